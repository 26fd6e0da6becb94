//! Validation problems: one [`FieldError`] per problem, collected into [`ValidationErrors`].
//!
//! Every problem carries the request field it is about, a stable machine code
//! ([`ErrorCode`]) and a sentence for humans. Codes are part of the public contract: they
//! never change meaning, and new ones are only ever added.

use std::fmt;

/// The stable, machine-readable code of a validation problem.
///
/// Serialised (and shown by [`ErrorCode::as_str`]) in `snake_case`, e.g.
/// `currency_network_mismatch`.
///
/// ```
/// use domain::ErrorCode;
/// assert_eq!(ErrorCode::CurrencyNetworkMismatch.as_str(), "currency_network_mismatch");
/// assert_eq!(ErrorCode::ALL.len(), 35);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not a JSON object (syntax error, truncated, wrong top-level type).
    InvalidJson,
    /// The body has a member the API does not know.
    UnknownField,
    /// A member has the wrong JSON type (e.g. the string `"true"` for a boolean).
    InvalidType,
    /// A mandatory member is missing or empty.
    Required,
    /// A number is outside the range the member allows.
    OutOfRange,
    /// Neither or both of `userId` / `businessId` were given.
    ExactlyOneSubject,
    /// A subject id is not a UUID.
    InvalidUuid,
    /// The currency is not in the ledger table.
    UnsupportedCurrency,
    /// The network is not one the service knows.
    UnsupportedNetwork,
    /// The network is not the one the ledger table assigns to the currency.
    CurrencyNetworkMismatch,
    /// Not exactly one of `counterpartyAddress` / `paymentHash` / `invoice` was given.
    ExactlyOneCounterparty,
    /// The address is malformed for its network (characters, length, prefix).
    InvalidAddress,
    /// The address is well formed but its checksum is wrong (base58check, bech32, EIP-55).
    InvalidAddressChecksum,
    /// The address is valid, but for another bitcoin network than the configured one.
    AddressNetworkMismatch,
    /// A Lightning payment hash is not 64 hexadecimal characters.
    InvalidPaymentHash,
    /// The bolt11 invoice cannot be decoded or breaks BOLT 11.
    InvalidInvoice,
    /// The bolt11 invoice decodes but its signature does not verify.
    InvalidInvoiceSignature,
    /// The bolt11 invoice is for another bitcoin network than the configured one.
    InvoiceNetworkMismatch,
    /// A Lightning counterparty was given for an asset other than BTC on BTC.
    LightningRequiresBtc,
    /// The transaction hash is malformed for its network.
    InvalidTxHash,
    /// A `txHash` was given together with a Lightning counterparty.
    TxHashWithLightning,
    /// A webhook endpoint was asked for an event type that does not exist.
    UnknownEventType,
    /// The counterparty cannot prove ownership by signing a message (a bare payment hash, a P2WSH
    /// or other script address, a Solana address that is no public key).
    OwnershipProofUnavailable,
    /// An ownership proof is not decodable as any signature form the counterparty can make.
    SignatureMalformed,
    /// An ownership proof is well formed but was not made by the counterparty over the challenge.
    SignatureMismatch,
    /// A declaration's custody is not `SELF_HOSTED` or `VASP`.
    InvalidCustody,
    /// A declaration's owner is not `CUSTOMER` or `THIRD_PARTY`.
    InvalidOwner,
    /// A declaration with custody `VASP` names no VASP.
    VaspRequired,
    /// A declaration names a VASP although its custody is `SELF_HOSTED`.
    VaspNotAllowed,
    /// A declaration with owner `THIRD_PARTY` names no third party.
    ThirdPartyRequired,
    /// A declaration names a third party although its owner is `CUSTOMER`.
    ThirdPartyNotAllowed,
    /// A third party is not exactly one of a natural person or a legal person.
    ExactlyOneThirdPartyKind,
    /// A name is empty, longer than 140 characters, or contains control or format characters.
    InvalidName,
    /// A country is not an officially assigned upper-case ISO 3166-1 alpha-2 code (or `XK`).
    InvalidCountry,
    /// An LEI is not 20 characters `[0-9A-Z]` with valid ISO 17442 check digits.
    InvalidLei,
}

impl ErrorCode {
    /// Every code, in declaration order (for documentation and exhaustive tests).
    pub const ALL: [ErrorCode; 35] = [
        ErrorCode::InvalidJson,
        ErrorCode::UnknownField,
        ErrorCode::InvalidType,
        ErrorCode::Required,
        ErrorCode::OutOfRange,
        ErrorCode::ExactlyOneSubject,
        ErrorCode::InvalidUuid,
        ErrorCode::UnsupportedCurrency,
        ErrorCode::UnsupportedNetwork,
        ErrorCode::CurrencyNetworkMismatch,
        ErrorCode::ExactlyOneCounterparty,
        ErrorCode::InvalidAddress,
        ErrorCode::InvalidAddressChecksum,
        ErrorCode::AddressNetworkMismatch,
        ErrorCode::InvalidPaymentHash,
        ErrorCode::InvalidInvoice,
        ErrorCode::InvalidInvoiceSignature,
        ErrorCode::InvoiceNetworkMismatch,
        ErrorCode::LightningRequiresBtc,
        ErrorCode::InvalidTxHash,
        ErrorCode::TxHashWithLightning,
        ErrorCode::UnknownEventType,
        ErrorCode::OwnershipProofUnavailable,
        ErrorCode::SignatureMalformed,
        ErrorCode::SignatureMismatch,
        ErrorCode::InvalidCustody,
        ErrorCode::InvalidOwner,
        ErrorCode::VaspRequired,
        ErrorCode::VaspNotAllowed,
        ErrorCode::ThirdPartyRequired,
        ErrorCode::ThirdPartyNotAllowed,
        ErrorCode::ExactlyOneThirdPartyKind,
        ErrorCode::InvalidName,
        ErrorCode::InvalidCountry,
        ErrorCode::InvalidLei,
    ];

    /// The stable `snake_case` spelling of the code.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::InvalidType => "invalid_type",
            ErrorCode::Required => "required",
            ErrorCode::OutOfRange => "out_of_range",
            ErrorCode::ExactlyOneSubject => "exactly_one_subject",
            ErrorCode::InvalidUuid => "invalid_uuid",
            ErrorCode::UnsupportedCurrency => "unsupported_currency",
            ErrorCode::UnsupportedNetwork => "unsupported_network",
            ErrorCode::CurrencyNetworkMismatch => "currency_network_mismatch",
            ErrorCode::ExactlyOneCounterparty => "exactly_one_counterparty",
            ErrorCode::InvalidAddress => "invalid_address",
            ErrorCode::InvalidAddressChecksum => "invalid_address_checksum",
            ErrorCode::AddressNetworkMismatch => "address_network_mismatch",
            ErrorCode::InvalidPaymentHash => "invalid_payment_hash",
            ErrorCode::InvalidInvoice => "invalid_invoice",
            ErrorCode::InvalidInvoiceSignature => "invalid_invoice_signature",
            ErrorCode::InvoiceNetworkMismatch => "invoice_network_mismatch",
            ErrorCode::LightningRequiresBtc => "lightning_requires_btc",
            ErrorCode::InvalidTxHash => "invalid_tx_hash",
            ErrorCode::TxHashWithLightning => "tx_hash_with_lightning",
            ErrorCode::UnknownEventType => "unknown_event_type",
            ErrorCode::OwnershipProofUnavailable => "ownership_proof_unavailable",
            ErrorCode::SignatureMalformed => "signature_malformed",
            ErrorCode::SignatureMismatch => "signature_mismatch",
            ErrorCode::InvalidCustody => "invalid_custody",
            ErrorCode::InvalidOwner => "invalid_owner",
            ErrorCode::VaspRequired => "vasp_required",
            ErrorCode::VaspNotAllowed => "vasp_not_allowed",
            ErrorCode::ThirdPartyRequired => "third_party_required",
            ErrorCode::ThirdPartyNotAllowed => "third_party_not_allowed",
            ErrorCode::ExactlyOneThirdPartyKind => "exactly_one_third_party_kind",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidCountry => "invalid_country",
            ErrorCode::InvalidLei => "invalid_lei",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one field of a request.
///
/// `field` is the camelCase name of the request member (`"currency"`), or, for rules over a
/// group of members, the members joined by `|` (`"userId|businessId"`). Problems with the
/// body as a whole use the empty string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The member the problem is about.
    pub field: String,
    /// The stable machine code.
    pub code: ErrorCode,
    /// A sentence for humans. Wording may improve over time; match on `code`, not on this.
    pub message: String,
}

impl FieldError {
    /// Builds a problem report.
    pub fn new(field: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.code, self.message)
        } else {
            write!(f, "{} ({}): {}", self.field, self.code, self.message)
        }
    }
}

/// Every problem found in one request, in field order. Never empty.
///
/// ```
/// use domain::{ErrorCode, FieldError, ValidationErrors};
/// let errors = ValidationErrors::from_vec(vec![
///     FieldError::new("currency", ErrorCode::Required, "currency is required"),
/// ]).unwrap();
/// assert_eq!(errors.len(), 1);
/// assert!(errors.has("currency", ErrorCode::Required));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// Wraps a list of problems; `None` when the list is empty.
    pub fn from_vec(errors: Vec<FieldError>) -> Option<Self> {
        if errors.is_empty() {
            None
        } else {
            Some(Self(errors))
        }
    }

    /// A report with exactly one problem.
    pub fn single(error: FieldError) -> Self {
        Self(vec![error])
    }

    /// The problems, in the order they were found.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// The number of problems (at least one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a `ValidationErrors` holds at least one problem.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a problem with this field and code was reported.
    pub fn has(&self, field: &str, code: ErrorCode) -> bool {
        self.0.iter().any(|e| e.field == field && e.code == code)
    }

    /// The codes reported, in order.
    pub fn codes(&self) -> Vec<ErrorCode> {
        self.0.iter().map(|e| e.code).collect()
    }

    /// Consumes the report, returning the problems.
    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} validation problem{}: ",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl IntoIterator for ValidationErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Implemented by the typed errors of each value constructor, so the request parser can turn
/// any of them into a [`FieldError`] for the member it came from.
pub trait RuleViolation: std::error::Error {
    /// The stable code for this error.
    fn code(&self) -> ErrorCode;

    /// This error as a problem report about `field`.
    fn at(&self, field: &str) -> FieldError {
        FieldError::new(field, self.code(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_display_as_their_spelling() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert_eq!(code.to_string(), code.as_str());
        }
    }

    #[test]
    fn empty_reports_do_not_exist() {
        assert!(ValidationErrors::from_vec(vec![]).is_none());
    }

    #[test]
    fn display_lists_every_problem() {
        let e = ValidationErrors::from_vec(vec![
            FieldError::new("currency", ErrorCode::Required, "currency is required"),
            FieldError::new("", ErrorCode::InvalidJson, "bad"),
        ])
        .unwrap();
        assert_eq!(
            e.to_string(),
            "2 validation problems: currency (required): currency is required; invalid_json: bad"
        );
    }
}
