//! Regie server library.
