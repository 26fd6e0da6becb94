//! What both test harnesses share.
#![allow(dead_code)]

pub mod http;
pub mod receiver;
pub mod resp;
