//! Identity-provider profiles against the fake provider (filled in by the next change).
