// PorticoRouting
