//! V2026_06 stub.
use crate::gateway::facade::Facade;
use crate::gateway::TedapiData;

pub fn tedapi(data: &TedapiData) -> Facade {
    super::tedapi(data)
}
