//! Personal fields (a caller's IP address, a gateway's, a user agent) kept so that they can be forgotten without
//! breaking a proof (issue 31). An event's hashed and signed body carries, per personal field, a **commitment**
//! to the value ([`commit`]); the value and the salt that opens the commitment are kept beside the event, sealed
//! under a key of the UTC day the event belongs to ([`vault`]). Erasing a day destroys its key: the sealed
//! openings can no longer be read anywhere they were copied (the log's own files included), while every hash,
//! signature, checkpoint and proof stays as it was. docs/FORMAT.md ("Committed personal fields") is the format.

pub mod commit;
pub mod vault;
