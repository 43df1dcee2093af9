//! Live capture from a network interface through libpcap (feature `live`).
