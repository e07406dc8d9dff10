package netpoll

// Fallback reports whether the tests run against the portable poller.
const Fallback = !RawDescriptors
