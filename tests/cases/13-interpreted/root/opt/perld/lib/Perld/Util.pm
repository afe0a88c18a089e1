package Perld::Util;
use parent -norequire, "Perld::Base";
1;
