//! Regie device library.
