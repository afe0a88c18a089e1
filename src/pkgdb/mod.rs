//! Package databases: which files a package holds. dpkg's file lists are
//! read directly; rpm is asked through its fixed binary.

pub mod changelog;
pub mod dpkg;
pub mod rpm;
pub mod swupd;
