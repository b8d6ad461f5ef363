//! contribot scraper worker.
