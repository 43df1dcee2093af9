//! Link-layer headers: Ethernet (802.1Q, QinQ), Linux SLL and SLL2, raw IP, BSD loopback.
