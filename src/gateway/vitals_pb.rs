//! The `/api/devices/vitals` protobuf of PW2/PW+ gateways (firmware before 23.44), decoded by
//! hand from the field tables of spec `gateway-protocols.md` §4.4 (upstream `tesla.proto`,
//! package `teslapower`).
//!
//! Only what pypowerwall reads is modelled; unknown fields are skipped as protobuf requires.
//! A message field that occurs twice is merged into the first occurrence (protobuf semantics),
//! a oneof keeps the last member seen. Decoding never panics: every length is checked by
//! quick-protobuf's reader, a string that is not UTF-8 is an error (as in Python's protobuf),
//! and any malformed input is a [`ProtoError`].
//!
//! ```text
//! DevicesWithVitals { 1 repeated devices: SiteControllerConnectedDeviceWithVitals }
//! SiteControllerConnectedDeviceWithVitals {
//!     1 device: SiteControllerConnectedDevice { 1 device: Device }
//!     2 repeated vitals: DeviceVital
//!     3 repeated alerts: string }
//! Device { 1 din, 2 partNumber, 3 serialNumber, 4 manufacturer, 5 siteLabel,
//!          6 componentParentDin, 7 firmwareVersion: StringValue {1 value}
//!          8 firstCommunicationTime, 9 lastCommunicationTime: Timestamp {1 seconds, 2 nanos}
//!          10 connectionParameters (skipped)
//!          11 deviceAttributes: oneof { 1 teslaEnergyEcuAttributes {1 ecuType int32, …}
//!                                       2 generatorAttributes {1 nameplateRealPowerW u64,
//!                                                              2 nameplateApparentPowerVa u64}
//!                                       3 pvInverterAttributes {1 nameplateRealPowerW u64}
//!                                       4 meterAttributes {1 repeated meterLocation u32} } }
//! DeviceVital { 1 name; oneof { 3 intValue int64, 4 floatValue double,
//!                               5 stringValue string, 6 boolValue bool } }
//! ```

use quick_protobuf::BytesReader;

pub use super::proto::ProtoError;

type Result<T> = std::result::Result<T, ProtoError>;

/// One entry of `DevicesWithVitals.devices`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceWithVitals {
    /// `device.device`; `None` when the wrapper or the device is absent.
    pub device: Option<Device>,
    pub vitals: Vec<Vital>,
    pub alerts: Vec<String>,
}

/// The identity part of a device. A `Some("")` string is a present-but-empty `StringValue`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Device {
    pub din: Option<String>,
    pub part_number: Option<String>,
    pub serial_number: Option<String>,
    pub manufacturer: Option<String>,
    pub site_label: Option<String>,
    pub component_parent_din: Option<String>,
    pub firmware_version: Option<String>,
    /// `Timestamp.seconds`.
    pub first_communication_time: Option<i64>,
    pub last_communication_time: Option<i64>,
    pub attributes: Option<Attributes>,
}

/// `deviceAttributes`: which member of the oneof is set (`None` inside = the wrapper is present
/// but empty).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attributes {
    pub kind: Option<AttributeKind>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttributeKind {
    TeslaEnergyEcu {
        ecu_type: i32,
    },
    Generator {
        real_power_w: u64,
        apparent_power_va: u64,
    },
    PvInverter {
        real_power_w: u64,
    },
    Meter {
        locations: Vec<u32>,
    },
}

/// One named value.
#[derive(Debug, Clone, PartialEq)]
pub struct Vital {
    pub name: String,
    /// `None` when no member of the value oneof is set (Python: `None`).
    pub value: Option<VitalValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VitalValue {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
}

/// Decodes a `DevicesWithVitals` message.
pub fn decode(b: &[u8]) -> Result<Vec<DeviceWithVitals>> {
    let mut r = BytesReader::from_bytes(b);
    let mut out = Vec::new();
    while !r.is_eof() {
        match r.next_tag(b)? {
            10 => out.push(device_with_vitals(r.read_bytes(b)?)?),
            t => r.read_unknown(b, t)?,
        }
    }
    Ok(out)
}

fn device_with_vitals(b: &[u8]) -> Result<DeviceWithVitals> {
    let mut r = BytesReader::from_bytes(b);
    let mut d = DeviceWithVitals::default();
    while !r.is_eof() {
        match r.next_tag(b)? {
            // SiteControllerConnectedDevice { 1 device }
            10 => {
                let w = r.read_bytes(b)?;
                let mut wr = BytesReader::from_bytes(w);
                while !wr.is_eof() {
                    match wr.next_tag(w)? {
                        10 => {
                            let dev = d.device.get_or_insert_with(Device::default);
                            dev.merge(wr.read_bytes(w)?)?;
                        }
                        t => wr.read_unknown(w, t)?,
                    }
                }
                d.device.get_or_insert_with(Device::default);
            }
            18 => d.vitals.push(vital(r.read_bytes(b)?)?),
            26 => d.alerts.push(r.read_string(b)?.to_string()),
            t => r.read_unknown(b, t)?,
        }
    }
    Ok(d)
}

/// `google.protobuf.StringValue.value`.
fn string_value(b: &[u8]) -> Result<String> {
    let mut r = BytesReader::from_bytes(b);
    let mut v = String::new();
    while !r.is_eof() {
        match r.next_tag(b)? {
            10 => v = r.read_string(b)?.to_string(),
            t => r.read_unknown(b, t)?,
        }
    }
    Ok(v)
}

/// `google.protobuf.Timestamp.seconds`.
fn timestamp_seconds(b: &[u8], into: &mut Option<i64>) -> Result<()> {
    let mut r = BytesReader::from_bytes(b);
    let mut seconds = into.unwrap_or(0);
    while !r.is_eof() {
        match r.next_tag(b)? {
            8 => seconds = r.read_int64(b)?,
            t => r.read_unknown(b, t)?,
        }
    }
    *into = Some(seconds);
    Ok(())
}

impl Device {
    fn merge(&mut self, b: &[u8]) -> Result<()> {
        let mut r = BytesReader::from_bytes(b);
        while !r.is_eof() {
            let tag = r.next_tag(b)?;
            match tag {
                10 | 18 | 26 | 34 | 42 | 50 | 58 => {
                    let v = string_value(r.read_bytes(b)?)?;
                    let slot = match tag >> 3 {
                        1 => &mut self.din,
                        2 => &mut self.part_number,
                        3 => &mut self.serial_number,
                        4 => &mut self.manufacturer,
                        5 => &mut self.site_label,
                        6 => &mut self.component_parent_din,
                        _ => &mut self.firmware_version,
                    };
                    *slot = Some(v);
                }
                66 => timestamp_seconds(r.read_bytes(b)?, &mut self.first_communication_time)?,
                74 => timestamp_seconds(r.read_bytes(b)?, &mut self.last_communication_time)?,
                90 => {
                    let a = self.attributes.get_or_insert_with(Attributes::default);
                    a.merge(r.read_bytes(b)?)?;
                }
                t => r.read_unknown(b, t)?,
            }
        }
        Ok(())
    }
}

impl Attributes {
    fn merge(&mut self, b: &[u8]) -> Result<()> {
        let mut r = BytesReader::from_bytes(b);
        while !r.is_eof() {
            let tag = r.next_tag(b)?;
            let field = tag >> 3;
            if tag & 7 != 2 || !(1..=4).contains(&field) {
                r.read_unknown(b, tag)?;
                continue;
            }
            let m = r.read_bytes(b)?;
            // A oneof member seen again merges into itself; another member replaces it.
            let same = matches!(
                (&self.kind, field),
                (Some(AttributeKind::TeslaEnergyEcu { .. }), 1)
                    | (Some(AttributeKind::Generator { .. }), 2)
                    | (Some(AttributeKind::PvInverter { .. }), 3)
                    | (Some(AttributeKind::Meter { .. }), 4)
            );
            let mut kind = match (same, field) {
                (true, _) => self.kind.take(),
                (false, 1) => Some(AttributeKind::TeslaEnergyEcu { ecu_type: 0 }),
                (false, 2) => Some(AttributeKind::Generator {
                    real_power_w: 0,
                    apparent_power_va: 0,
                }),
                (false, 3) => Some(AttributeKind::PvInverter { real_power_w: 0 }),
                _ => Some(AttributeKind::Meter {
                    locations: Vec::new(),
                }),
            };
            if let Some(k) = kind.as_mut() {
                k.merge(m)?;
            }
            self.kind = kind;
        }
        Ok(())
    }
}

impl AttributeKind {
    fn merge(&mut self, b: &[u8]) -> Result<()> {
        let mut r = BytesReader::from_bytes(b);
        while !r.is_eof() {
            let tag = r.next_tag(b)?;
            match (self as &mut AttributeKind, tag) {
                (AttributeKind::TeslaEnergyEcu { ecu_type }, 8) => *ecu_type = r.read_int32(b)?,
                (AttributeKind::Generator { real_power_w, .. }, 8) => {
                    *real_power_w = r.read_uint64(b)?
                }
                (
                    AttributeKind::Generator {
                        apparent_power_va, ..
                    },
                    16,
                ) => *apparent_power_va = r.read_uint64(b)?,
                (AttributeKind::PvInverter { real_power_w }, 8) => {
                    *real_power_w = r.read_uint64(b)?
                }
                (AttributeKind::Meter { locations }, 8) => locations.push(r.read_uint32(b)?),
                // Packed encoding of the repeated uint32.
                (AttributeKind::Meter { locations }, 10) => {
                    let p = r.read_bytes(b)?;
                    let mut pr = BytesReader::from_bytes(p);
                    while !pr.is_eof() {
                        locations.push(pr.read_uint32(p)?);
                    }
                }
                (_, t) => r.read_unknown(b, t)?,
            }
        }
        Ok(())
    }
}

fn vital(b: &[u8]) -> Result<Vital> {
    let mut r = BytesReader::from_bytes(b);
    let mut v = Vital {
        name: String::new(),
        value: None,
    };
    while !r.is_eof() {
        match r.next_tag(b)? {
            10 => v.name = r.read_string(b)?.to_string(),
            24 => v.value = Some(VitalValue::Int(r.read_int64(b)?)),
            33 => v.value = Some(VitalValue::Float(r.read_double(b)?)),
            42 => v.value = Some(VitalValue::Str(r.read_string(b)?.to_string())),
            48 => v.value = Some(VitalValue::Bool(r.read_bool(b)?)),
            t => r.read_unknown(b, t)?,
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = include_bytes!("../sim/fixtures/pw2/devices_vitals.bin");

    #[test]
    fn sample_has_thirteen_devices() {
        let devices = decode(SAMPLE).unwrap();
        assert_eq!(devices.len(), 13);
        let first = devices[0].device.as_ref().unwrap();
        assert_eq!(
            first.din.as_deref(),
            Some("STSTSM--1232100-00-E--T0000000000000")
        );
        assert_eq!(first.last_communication_time, Some(1708880456));
        assert_eq!(
            first.attributes.as_ref().unwrap().kind,
            Some(AttributeKind::TeslaEnergyEcu { ecu_type: 207 })
        );
        assert!(devices[0]
            .alerts
            .contains(&"SystemConnectedToGrid".to_string()));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bad in [
            &[0x0a, 0x05, 0x01][..],
            &[0xff; 12][..],
            &[0x0a, 0x02, 0x12, 0x05][..],
            &[0x0a, 0x04, 0x1a, 0x02, 0xc3, 0x28][..],
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        // Every truncation of the sample either decodes or fails cleanly.
        for n in 0..SAMPLE.len() {
            let _ = decode(&SAMPLE[..n]);
        }
        assert_eq!(decode(&[]).unwrap(), Vec::new());
    }

    #[test]
    fn oneofs_keep_the_last_member_and_packed_locations_decode() {
        // vital: name "x", int 5 then bool true → bool.
        let v = vital(&[0x0a, 0x01, b'x', 0x18, 0x05, 0x30, 0x01]).unwrap();
        assert_eq!(v.value, Some(VitalValue::Bool(true)));
        // meterAttributes with packed locations [5, 6].
        let mut a = Attributes::default();
        a.merge(&[0x22, 0x04, 0x0a, 0x02, 0x05, 0x06]).unwrap();
        assert_eq!(
            a.kind,
            Some(AttributeKind::Meter {
                locations: vec![5, 6]
            })
        );
    }
}
