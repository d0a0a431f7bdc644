//! Shared helpers live in tests/it; this empty library lets the root package own the tests.
