//! The byte ranges of the distribution API's headers: a blob GET's `Range` and an upload
//! chunk's `Content-Range`. Pure text rules, kept here (not in the server) so that the fuzzer
//! (`fuzz/`) reaches them without an HTTP stack.

/// What a `Range` request header asks of a blob of some size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range, or one the server may ignore (several ranges, a malformed header): RFC 9110
    /// lets it send the whole blob.
    Whole,
    /// The bytes `first..=last`, both within the blob.
    Part { first: u64, last: u64 },
    /// A range that starts past the end, or asks for the last 0 bytes: 416.
    Unsatisfiable,
}

/// Reads a single `bytes=` range (`a-b`, `a-`, `-n`) of a blob of `size` bytes. `Part` is
/// always within the blob: `first <= last < size`.
pub fn blob_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeRequest::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let (first, last) = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(first), Ok(last)) if last >= first => (first, last.min(size.saturating_sub(1))),
        (Ok(_), Ok(_)) => return RangeRequest::Unsatisfiable,
        (Ok(first), Err(_)) if b.is_empty() => (first, size.saturating_sub(1)),
        (Err(_), Ok(n)) if a.is_empty() => {
            if n == 0 {
                return RangeRequest::Unsatisfiable;
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        _ => return RangeRequest::Whole,
    };
    if first >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part { first, last }
}

/// Parses an upload chunk's `Content-Range`: `a-b` (the distribution form), also
/// `bytes a-b/total` and `bytes=a-b`. `None` for anything else; whether the range fits the
/// session is the registry's question, not this one's.
pub fn upload_content_range(value: &str) -> Option<(u64, u64)> {
    let s = value.trim();
    let s = s
        .strip_prefix("bytes=")
        .or_else(|| s.strip_prefix("bytes "))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ranges() {
        let part = |first, last| RangeRequest::Part { first, last };
        assert_eq!(blob_range(None, 10), RangeRequest::Whole);
        assert_eq!(blob_range(Some("bytes=0-3"), 10), part(0, 3));
        assert_eq!(blob_range(Some("bytes=4-"), 10), part(4, 9));
        assert_eq!(blob_range(Some("bytes=-3"), 10), part(7, 9));
        assert_eq!(blob_range(Some("bytes=-30"), 10), part(0, 9));
        assert_eq!(blob_range(Some("bytes=5-100"), 10), part(5, 9));
        assert_eq!(
            blob_range(Some("bytes=10-"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            blob_range(Some("bytes=-0"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            blob_range(Some("bytes=3-2"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            blob_range(Some("bytes=0-0"), 0),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(blob_range(Some("bytes=-1"), 0), RangeRequest::Unsatisfiable);
        assert_eq!(blob_range(Some("bytes=0-1,4-5"), 10), RangeRequest::Whole);
        assert_eq!(blob_range(Some("items=0-1"), 10), RangeRequest::Whole);
        assert_eq!(blob_range(Some("bytes=a-b"), 10), RangeRequest::Whole);
    }

    #[test]
    fn upload_content_ranges() {
        assert_eq!(upload_content_range("0-99"), Some((0, 99)));
        assert_eq!(upload_content_range("bytes 100-199/1000"), Some((100, 199)));
        assert_eq!(upload_content_range("bytes=5-9"), Some((5, 9)));
        assert_eq!(upload_content_range(" 7 - 8 "), Some((7, 8)));
        assert_eq!(upload_content_range("5"), None);
        assert_eq!(upload_content_range("-5"), None);
        assert_eq!(upload_content_range("bytes */100"), None);
        assert_eq!(upload_content_range("99999999999999999999-1"), None);
    }
}
