//! contribot processor worker.
