// Package shard is roost's connection registry: which connections each user
// holds, which connections each channel has, and each connection's metadata,
// built to hold millions of entries and to be read by fan-out without a lock.
//
// The registry is split into NumShards shards, each with its own mutex and
// padded to its own cache lines; a user id or channel name picks its shard by
// xxhash.Sum64String(key) & 255, so unrelated users and channels never
// contend, and there is no global lock.
//
// Channel members are copy-on-write: Members returns an immutable *Snapshot
// through an atomic pointer, with no lock and no allocation, and the snapshot
// stays unchanged while writers keep joining and leaving. Snapshots are split
// into chunks of at most 256 members that fan-out workers can share out.
// Writers do not copy the whole member list: a join writes one slot no reader
// can see yet and publishes a new snapshot header (O(1) amortised), and a
// leave moves the last member into the leaver's slot, copying one chunk and
// two small index nodes (O(256 + 64 + n/16384) pointers).
//
// Lock order (docs/locking.md): a Conn's own mutex first, then at most one
// shard mutex at a time. Callbacks (Remove's fn, the Range functions' fn) run
// with no lock held.
package shard
