//! Python websockets as peer.
