//! Plain data the layers hand each other.
