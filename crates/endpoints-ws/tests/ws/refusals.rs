//! Requests the server refuses get a short HTTP answer at once, and the listener goes on.
