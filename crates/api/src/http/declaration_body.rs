//! The customer's declaration about the counterparty at the edge (contract §10): the JSON body
//! of `PUT …/declaration` and the hosted step's form fields both become [`DeclarationFields`]
//! (one flat shape, each value with the name it had in its source), which one function turns
//! into the domain's [`Declaration`], reporting **every** problem at once.

use domain::{
    Country, Custody, Declaration, DeclarationError, ErrorCode, FieldError, Lei, Owner, PersonName,
    RuleViolation as _, ThirdParty, ValidationErrors, Vasp, quote_for_message,
};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// One value of a declaration, with the name it had where it came from (a JSON path such
/// as `vasp.lei`, or a form field such as `vaspLei`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// Its name in the request.
    pub field: String,
    /// The value, as given.
    pub value: String,
}

/// Which kind of third party a declaration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThirdPartyKind {
    /// A natural person.
    Natural,
    /// A legal person.
    Legal,
}

/// A declaration as received, member by member: absent members are `None`, empty ones are
/// absent. The names of the groups (`vasp`, `thirdParty`) and of the kind are those of the
/// request too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclarationFields {
    /// `custody`.
    pub custody: Option<Named>,
    /// `owner`.
    pub owner: Option<Named>,
    /// The VASP's name, LEI and country.
    pub vasp_name: Option<Named>,
    /// The VASP's LEI.
    pub vasp_lei: Option<Named>,
    /// The VASP's country.
    pub vasp_country: Option<Named>,
    /// Whether a VASP was given at all (an empty `vasp` object counts).
    pub vasp: bool,
    /// Whether a third party was given at all, and of which kind if that was said.
    pub third_party: Option<Option<ThirdPartyKind>>,
    /// A natural person's first name(s).
    pub first_name: Option<Named>,
    /// A natural person's last name(s).
    pub last_name: Option<Named>,
    /// A natural person's country of residence.
    pub country_of_residence: Option<Named>,
    /// A legal person's name.
    pub legal_name: Option<Named>,
    /// A legal person's LEI.
    pub lei: Option<Named>,
    /// A legal person's country of registration.
    pub country_of_registration: Option<Named>,
}

fn required(field: &str) -> FieldError {
    FieldError::new(field, ErrorCode::Required, format!("{field} is required"))
}

/// The names a source gives the members that can be missing or be a group.
#[derive(Debug, Clone, Copy)]
pub struct FieldNames {
    /// Custody.
    pub custody: &'static str,
    /// Owner.
    pub owner: &'static str,
    /// The VASP as a whole.
    pub vasp: &'static str,
    /// The VASP's name.
    pub vasp_name: &'static str,
    /// The third party as a whole.
    pub third_party: &'static str,
    /// A natural person's first name(s).
    pub first_name: &'static str,
    /// A natural person's last name(s).
    pub last_name: &'static str,
    /// A legal person's name.
    pub legal_name: &'static str,
}

/// The names of the JSON body.
pub const JSON_NAMES: FieldNames = FieldNames {
    custody: "custody",
    owner: "owner",
    vasp: "vasp",
    vasp_name: "vasp.name",
    third_party: "thirdParty",
    first_name: "thirdParty.naturalPerson.firstName",
    last_name: "thirdParty.naturalPerson.lastName",
    legal_name: "thirdParty.legalPerson.name",
};

/// The names of the hosted step's form fields (contract §11); a problem of a group is shown
/// at the group's first field.
pub const FORM_NAMES: FieldNames = FieldNames {
    custody: "custody",
    owner: "owner",
    vasp: "vaspName",
    vasp_name: "vaspName",
    third_party: "thirdPartyKind",
    first_name: "firstName",
    last_name: "lastName",
    legal_name: "legalName",
};

/// The declaration fields of the hosted step's form (`custody`, `owner`, `vaspName`,
/// `vaspLei`, `vaspCountry`, `thirdPartyKind`, `firstName`, `lastName`,
/// `countryOfResidence`, `legalName`, `lei`, `countryOfRegistration`): empty fields are
/// absent, the first of a repeated field counts, other fields are not the declaration's.
/// `None` when no declaration field is given at all.
///
/// ```
/// use api::http::declaration_body::{FORM_NAMES, form_fields};
/// let pairs = [("custody", "VASP"), ("owner", "CUSTOMER"), ("vaspName", " Example "), ("vaspLei", "")];
/// let fields = form_fields(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
/// let d = fields.validate(&FORM_NAMES).unwrap();
/// assert_eq!(d.vasp().unwrap().name.as_str(), "Example");
/// assert!(form_fields([("signature".to_string(), "x".to_string())]).is_none());
/// ```
pub fn form_fields(pairs: impl IntoIterator<Item = (String, String)>) -> Option<DeclarationFields> {
    let mut fields = DeclarationFields::default();
    let mut any = false;
    for (name, value) in pairs {
        if value.is_empty() {
            continue;
        }
        let named = Some(Named {
            field: name.clone(),
            value: value.clone(),
        });
        let slot = match name.as_str() {
            "custody" => &mut fields.custody,
            "owner" => &mut fields.owner,
            "vaspName" => &mut fields.vasp_name,
            "vaspLei" => &mut fields.vasp_lei,
            "vaspCountry" => &mut fields.vasp_country,
            "firstName" => &mut fields.first_name,
            "lastName" => &mut fields.last_name,
            "countryOfResidence" => &mut fields.country_of_residence,
            "legalName" => &mut fields.legal_name,
            "lei" => &mut fields.lei,
            "countryOfRegistration" => &mut fields.country_of_registration,
            "thirdPartyKind" => {
                any = true;
                if fields.third_party.is_none() {
                    fields.third_party = Some(match value.as_str() {
                        "NATURAL" => Some(ThirdPartyKind::Natural),
                        "LEGAL" => Some(ThirdPartyKind::Legal),
                        _ => None,
                    });
                }
                continue;
            }
            _ => continue,
        };
        any = true;
        if slot.is_none() {
            *slot = named;
        }
    }
    any.then_some(fields)
}

impl DeclarationFields {
    /// The declaration, or every problem with the fields (each under its own name) and
    /// between them (under the group's name).
    ///
    /// # Errors
    ///
    /// Every problem at once.
    pub fn validate(&self, names: &FieldNames) -> Result<Declaration, Vec<FieldError>> {
        let custody_field = names.custody;
        let owner_field = names.owner;
        let mut errors = Vec::new();
        let custody = match &self.custody {
            None => {
                errors.push(required(custody_field));
                None
            }
            Some(n) => Custody::parse(&n.value)
                .map_err(|e| errors.push(e.at(&n.field)))
                .ok(),
        };
        let owner = match &self.owner {
            None => {
                errors.push(required(owner_field));
                None
            }
            Some(n) => Owner::parse(&n.value)
                .map_err(|e| errors.push(e.at(&n.field)))
                .ok(),
        };
        let name = |n: &Option<Named>, group: &str, errors: &mut Vec<FieldError>| match n {
            None => {
                errors.push(required(group));
                None
            }
            Some(n) => PersonName::parse(&n.value)
                .map_err(|e| errors.push(e.at(&n.field)))
                .ok(),
        };
        let lei = |n: &Option<Named>, errors: &mut Vec<FieldError>| match n {
            None => Some(None),
            Some(n) => Lei::parse(&n.value)
                .map(Some)
                .map_err(|e| errors.push(e.at(&n.field)))
                .ok(),
        };
        let country = |n: &Option<Named>, errors: &mut Vec<FieldError>| match n {
            None => Some(None),
            Some(n) => Country::parse(&n.value)
                .map(Some)
                .map_err(|e| errors.push(e.at(&n.field)))
                .ok(),
        };
        let vasp_given = self.vasp
            || self.vasp_name.is_some()
            || self.vasp_lei.is_some()
            || self.vasp_country.is_some();
        let vasp_group = names.vasp;
        let vasp = if vasp_given {
            let n = name(&self.vasp_name, names.vasp_name, &mut errors);
            let l = lei(&self.vasp_lei, &mut errors);
            let c = country(&self.vasp_country, &mut errors);
            match (n, l, c) {
                (Some(name), Some(lei), Some(country)) => Some(Some(Vasp { name, lei, country })),
                _ => None,
            }
        } else {
            Some(None)
        };
        let tp_group = names.third_party;
        let kind = self.third_party.flatten();
        let natural_given = self.first_name.is_some()
            || self.last_name.is_some()
            || self.country_of_residence.is_some();
        let legal_given = self.legal_name.is_some()
            || self.lei.is_some()
            || self.country_of_registration.is_some();
        let kind = kind.or(match (natural_given, legal_given) {
            (true, false) => Some(ThirdPartyKind::Natural),
            (false, true) => Some(ThirdPartyKind::Legal),
            _ => None,
        });
        let third_party_given = self.third_party.is_some() || natural_given || legal_given;
        let third_party = if !third_party_given {
            Some(None)
        } else {
            match kind {
                None => {
                    errors.push(FieldError::new(
                        tp_group,
                        ErrorCode::ExactlyOneThirdPartyKind,
                        "name exactly one of a natural person and a legal person",
                    ));
                    None
                }
                Some(ThirdPartyKind::Natural) => {
                    let first = name(&self.first_name, names.first_name, &mut errors);
                    let last = name(&self.last_name, names.last_name, &mut errors);
                    let residence = country(&self.country_of_residence, &mut errors);
                    match (first, last, residence) {
                        (Some(first_name), Some(last_name), Some(country_of_residence)) => {
                            Some(Some(ThirdParty::NaturalPerson {
                                first_name,
                                last_name,
                                country_of_residence,
                            }))
                        }
                        _ => None,
                    }
                }
                Some(ThirdPartyKind::Legal) => {
                    let n = name(&self.legal_name, names.legal_name, &mut errors);
                    let l = lei(&self.lei, &mut errors);
                    let c = country(&self.country_of_registration, &mut errors);
                    match (n, l, c) {
                        (Some(name), Some(lei), Some(country_of_registration)) => {
                            Some(Some(ThirdParty::LegalPerson {
                                name,
                                lei,
                                country_of_registration,
                            }))
                        }
                        _ => None,
                    }
                }
            }
        };
        if let (Some(custody), Some(owner), Some(vasp), Some(third_party)) =
            (custody, owner, vasp, third_party)
        {
            match Declaration::new(custody, owner, vasp, third_party) {
                Ok(d) if errors.is_empty() => return Ok(d),
                Ok(_) => {}
                Err(between) => {
                    for e in between {
                        let field = match e {
                            DeclarationError::VaspRequired | DeclarationError::VaspNotAllowed => {
                                vasp_group
                            }
                            DeclarationError::ThirdPartyRequired
                            | DeclarationError::ThirdPartyNotAllowed => tp_group,
                        };
                        errors.push(e.at(field));
                    }
                }
            }
        }
        Err(errors)
    }
}

/// The body of `PUT …/declaration` (OpenAPI): camelCase members, unknown members refused at
/// every level.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the body for OpenAPI; it is read member by member.
#[schema(
    rename_all = "camelCase",
    example = json!({"custody": "SELF_HOSTED", "owner": "CUSTOMER"})
)]
pub struct DeclarationBody {
    /// Who holds the keys: `SELF_HOSTED` or `VASP`.
    #[schema(pattern = "^(SELF_HOSTED|VASP)$")]
    custody: String,
    /// Whose wallet or account it is: `CUSTOMER` or `THIRD_PARTY`.
    #[schema(pattern = "^(CUSTOMER|THIRD_PARTY)$")]
    owner: String,
    /// Required exactly when custody is `VASP`.
    vasp: Option<VaspBody>,
    /// Required exactly when the owner is `THIRD_PARTY`.
    third_party: Option<ThirdPartyBody>,
}

/// The VASP that holds the account.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct VaspBody {
    /// Its name: 1–140 characters, no control or invisible formatting characters.
    name: String,
    /// Its Legal Entity Identifier (20 characters, ISO 17442 check digits).
    #[schema(pattern = "^[0-9A-Z]{20}$")]
    lei: Option<String>,
    /// Its country: ISO 3166-1 alpha-2, upper case.
    #[schema(pattern = "^[A-Z]{2}$")]
    country: Option<String>,
}

/// The person or entity a third-party wallet belongs to: exactly one of the two.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct ThirdPartyBody {
    /// A natural person.
    natural_person: Option<NaturalPersonBody>,
    /// A legal person.
    legal_person: Option<LegalPersonBody>,
}

/// A natural person.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct NaturalPersonBody {
    /// First name(s).
    first_name: String,
    /// Last name(s).
    last_name: String,
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Z]{2}$")]
    country_of_residence: Option<String>,
}

/// A legal person.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct LegalPersonBody {
    /// Its registered name.
    name: String,
    /// Its Legal Entity Identifier.
    #[schema(pattern = "^[0-9A-Z]{20}$")]
    lei: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Z]{2}$")]
    country_of_registration: Option<String>,
}

/// Reads the members of a JSON object at `path`: each known one into `take`, an unknown one
/// or one of the wrong type as a problem.
fn object<'a>(
    value: &'a Value,
    path: &str,
    known: &[&str],
    errors: &mut Vec<FieldError>,
) -> Option<&'a Map<String, Value>> {
    let Value::Object(map) = value else {
        errors.push(FieldError::new(
            path,
            ErrorCode::InvalidType,
            format!("{path} must be an object"),
        ));
        return None;
    };
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            let field = if path.is_empty() {
                quote_for_message(key)
            } else {
                format!("{path}.{}", quote_for_message(key))
            };
            errors.push(FieldError::new(
                field.clone(),
                ErrorCode::UnknownField,
                format!("{field} is not a member of this request"),
            ));
        }
    }
    Some(map)
}

/// A string member at `path` (`null` and `""` are absent).
fn string(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Named> {
    let field = if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    };
    match map.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(Named {
            field,
            value: s.clone(),
        }),
        Some(_) => {
            errors.push(FieldError::new(
                field.clone(),
                ErrorCode::InvalidType,
                format!("{field} must be a string"),
            ));
            None
        }
    }
}

/// Parses the JSON body of `PUT …/declaration`.
///
/// ```
/// use api::http::declaration_body::parse_json;
/// use domain::ErrorCode;
/// let d = parse_json(br#"{"custody": "SELF_HOSTED", "owner": "CUSTOMER"}"#).unwrap();
/// assert!(d.is_own_self_hosted());
/// let errors = parse_json(br#"{"custody": "VASP", "owner": "THIRD_PARTY", "x": 1}"#).unwrap_err();
/// assert_eq!(errors.codes(), vec![
///     ErrorCode::UnknownField,
///     ErrorCode::VaspRequired,
///     ErrorCode::ThirdPartyRequired,
/// ]);
/// ```
///
/// # Errors
///
/// Every problem at once.
pub fn parse_json(body: &[u8]) -> Result<Declaration, ValidationErrors> {
    let not_json = |message: String| {
        ValidationErrors::single(FieldError::new("", ErrorCode::InvalidJson, message))
    };
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| not_json(format!("the body is not valid JSON: {e}")))?;
    let mut errors = Vec::new();
    let mut fields = DeclarationFields::default();
    let Some(root) = object(
        &value,
        "",
        &["custody", "owner", "vasp", "thirdParty"],
        &mut errors,
    ) else {
        return Err(not_json("the body must be a JSON object".into()));
    };
    fields.custody = string(root, "custody", "", &mut errors);
    fields.owner = string(root, "owner", "", &mut errors);
    if let Some(v) = root.get("vasp").filter(|v| !v.is_null()) {
        fields.vasp = true;
        if let Some(vasp) = object(v, "vasp", &["name", "lei", "country"], &mut errors) {
            fields.vasp_name = string(vasp, "name", "vasp", &mut errors);
            fields.vasp_lei = string(vasp, "lei", "vasp", &mut errors);
            fields.vasp_country = string(vasp, "country", "vasp", &mut errors);
        }
    }
    if let Some(t) = root.get("thirdParty").filter(|v| !v.is_null()) {
        let mut kind = None;
        if let Some(tp) = object(
            t,
            "thirdParty",
            &["naturalPerson", "legalPerson"],
            &mut errors,
        ) {
            let natural = tp.get("naturalPerson").filter(|v| !v.is_null());
            let legal = tp.get("legalPerson").filter(|v| !v.is_null());
            match (natural, legal) {
                (Some(n), None) => {
                    kind = Some(ThirdPartyKind::Natural);
                    let path = "thirdParty.naturalPerson";
                    if let Some(n) = object(
                        n,
                        path,
                        &["firstName", "lastName", "countryOfResidence"],
                        &mut errors,
                    ) {
                        fields.first_name = string(n, "firstName", path, &mut errors);
                        fields.last_name = string(n, "lastName", path, &mut errors);
                        fields.country_of_residence =
                            string(n, "countryOfResidence", path, &mut errors);
                    }
                }
                (None, Some(l)) => {
                    kind = Some(ThirdPartyKind::Legal);
                    let path = "thirdParty.legalPerson";
                    if let Some(l) = object(
                        l,
                        path,
                        &["name", "lei", "countryOfRegistration"],
                        &mut errors,
                    ) {
                        fields.legal_name = string(l, "name", path, &mut errors);
                        fields.lei = string(l, "lei", path, &mut errors);
                        fields.country_of_registration =
                            string(l, "countryOfRegistration", path, &mut errors);
                    }
                }
                _ => {}
            }
        }
        fields.third_party = Some(kind);
    }
    match fields.validate(&JSON_NAMES) {
        Ok(d) if errors.is_empty() => Ok(d),
        Ok(_) => Err(ValidationErrors::from_vec(errors)
            .unwrap_or_else(|| not_json("the request is invalid".into()))),
        Err(rules) => {
            // A member already reported (e.g. of the wrong type) is not also `required`.
            let reported: Vec<String> = errors.iter().map(|e| e.field.clone()).collect();
            errors.extend(
                rules
                    .into_iter()
                    .filter(|e| e.code != ErrorCode::Required || !reported.contains(&e.field)),
            );
            Err(ValidationErrors::from_vec(errors)
                .unwrap_or_else(|| not_json("the request is invalid".into())))
        }
    }
}

/// A declaration as the API shows it (the JSON of `PUT …/declaration`, normalised: names
/// trimmed, absent parts left out).
pub fn to_json(d: &Declaration) -> Value {
    let mut out = Map::new();
    out.insert("custody".into(), Value::from(d.custody().as_str()));
    out.insert("owner".into(), Value::from(d.owner().as_str()));
    let put = |map: &mut Map<String, Value>, key: &str, value: Option<&str>| {
        if let Some(v) = value {
            map.insert(key.into(), Value::from(v));
        }
    };
    if let Some(v) = d.vasp() {
        let mut vasp = Map::new();
        vasp.insert("name".into(), Value::from(v.name.as_str()));
        put(&mut vasp, "lei", v.lei.as_ref().map(Lei::as_str));
        put(
            &mut vasp,
            "country",
            v.country.as_ref().map(Country::as_str),
        );
        out.insert("vasp".into(), Value::Object(vasp));
    }
    if let Some(t) = d.third_party() {
        let mut party = Map::new();
        let (key, person) = match t {
            ThirdParty::NaturalPerson {
                first_name,
                last_name,
                country_of_residence,
            } => {
                let mut p = Map::new();
                p.insert("firstName".into(), Value::from(first_name.as_str()));
                p.insert("lastName".into(), Value::from(last_name.as_str()));
                put(
                    &mut p,
                    "countryOfResidence",
                    country_of_residence.as_ref().map(Country::as_str),
                );
                ("naturalPerson", p)
            }
            ThirdParty::LegalPerson {
                name,
                lei,
                country_of_registration,
            } => {
                let mut p = Map::new();
                p.insert("name".into(), Value::from(name.as_str()));
                put(&mut p, "lei", lei.as_ref().map(Lei::as_str));
                put(
                    &mut p,
                    "countryOfRegistration",
                    country_of_registration.as_ref().map(Country::as_str),
                );
                ("legalPerson", p)
            }
        };
        party.insert(key.into(), Value::Object(person));
        out.insert("thirdParty".into(), Value::Object(party));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_of_the_wrong_type_is_one_problem() {
        let errors = parse_json(br#"{"custody": 1, "owner": ["CUSTOMER"]}"#).unwrap_err();
        assert_eq!(
            errors.codes(),
            vec![ErrorCode::InvalidType, ErrorCode::InvalidType],
            "{errors:?}"
        );
        let missing = parse_json(b"{}").unwrap_err();
        assert_eq!(
            missing.codes(),
            vec![ErrorCode::Required, ErrorCode::Required]
        );
    }
}
