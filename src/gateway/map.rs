//! (placeholder until the mapping lands)
use super::{facade::Facade, TedapiData};

pub fn tedapi(_data: &TedapiData) -> Facade {
    Facade::default()
}
