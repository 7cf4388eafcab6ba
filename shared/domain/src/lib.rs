//! RND Realtime's domain core: everything about orders, identity and real-time events that is
//! true whatever runs it. It knows nothing of AWS or Lambda; adapters implement its [`ports`].
//!
//! # Layout
//! - [`ids`], [`geo`], [`error`]: validated values (parse, don't validate); [`error::Chain`]
//!   renders an error with its sources; [`time`]: timestamps written as `chrono` writes them,
//!   faster.
//! - [`identity`]: roles, JWT claims and verification, token extraction.
//! - [`order`]: the order, its lifecycle state machine and who may move it.
//! - [`live`]: the small live item (driver location, ETA, sequence) and the location rate rule.
//! - [`rooms`]: audiences and who may join or stream into them.
//! - [`events`]: from an order change (old image, new image) to messages and their rooms.
//! - [`change`]: a change of an orders-table item ([`ChangeKind`], [`change::OrderChange`]) and
//!   the one decoder of a stream record's images, for every store and consumer of the change
//!   feed.
//! - [`inbox`]: the per-user inbox of user-room events: cursors, replay and continuity.
//! - [`protocol`]: the WebSocket wire format, client parsing and server messages.
//! - [`tracking`]: the tracking payload.
//! - [`profile`]: user profiles (name, phone; a chef's business and pickup point), parsed.
//! - [`eta`]: arrival estimates behind a trait.
//! - [`ports`]: traits for stores and the notifier.
//! - [`device`]: the devices a user gets push notifications on (FCM registration tokens).
//! - [`push`]: which change calls for which push notification, and the port that sends them.

pub mod change;
pub mod device;
pub mod error;
pub mod eta;
pub mod events;
pub mod geo;
pub mod identity;
pub mod ids;
pub mod inbox;
pub mod limits;
pub mod live;
pub mod order;
pub mod ports;
pub mod presence;
pub mod profile;
pub mod protocol;
pub mod protocol_schema;
pub mod push;
pub mod rooms;
pub mod route;
pub mod time;
pub mod tracking;
pub mod visibility;

pub use change::ChangeKind;
pub use error::ValidationError;
pub use events::{OrderRecord, Outgoing, derive_events};
pub use identity::{Actor, Identity, Role};
pub use ids::{ConnectionId, OrderId, UserId};
pub use live::{DriverLocation, Eta, LiveState, LocationOutcome, LocationWrite};
pub use order::{Action, Order, OrderStatus, OrderView, TransitionError};
pub use profile::Profile;
pub use rooms::Room;
