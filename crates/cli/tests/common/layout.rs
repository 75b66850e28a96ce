//! OCI image layouts on disk (filled in by the real-client tests).
