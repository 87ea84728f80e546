//! MemoryStore conformance (being written).
