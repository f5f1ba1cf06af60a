//! Plaza's testnets: the deterministic cluster simulator ([`sim`]), and later the local and
//! container testnets, the load generator and the benchmark (DESIGN §10).

pub mod sim;
pub mod workload;
