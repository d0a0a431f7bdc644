//! The application (a placeholder: this example is about its migrations).
