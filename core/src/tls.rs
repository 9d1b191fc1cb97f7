//! Reading a TLS failure out of an HTTPS client's error, for the server's webhook and the counter terminal: behind
//! the `tls` feature, so the browser's build never compiles rustls.

use std::error::Error;

/// The TLS failure behind an error, if that is what it was. rustls's error sits inside nested io::Errors, whose
/// `source` skips what they wrap, so each is opened by hand.
pub fn failure<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(cause) = next {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn Error + 'static)),
            None => cause.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that names its cause through `source`, as an HTTP client's error does.
    #[derive(Debug)]
    struct Request(std::io::Error);

    impl std::fmt::Display for Request {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the request failed")
        }
    }

    impl Error for Request {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_tls_failure_is_found_inside_nested_io_errors() {
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, refused.clone());
        let err = Request(std::io::Error::other(inner));
        assert_eq!(failure(&err), Some(&refused));
    }

    #[test]
    fn an_error_without_tls_behind_it_has_no_tls_failure() {
        let err = Request(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(failure(&err), None);
    }
}
