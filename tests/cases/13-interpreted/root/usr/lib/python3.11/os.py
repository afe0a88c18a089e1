# stdlib stand-in
