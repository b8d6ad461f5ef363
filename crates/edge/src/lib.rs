//! contribot-edge: the I/O shell both workers share.
