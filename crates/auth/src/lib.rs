//! Users, robot tokens, roles and the Docker token service: reserved. Until it exists the
//! registry runs without authentication and refuses non-loopback listeners unless told otherwise.
