//! An error's text with its causes: tonic's "transport error" alone does not say which
//! (refused, reset, a certificate that does not verify). Shared by the coordinator's client
//! commands and the worker.

/// `error` and each of its sources, joined by ": ", a cause the text already says left out.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer {
        text: &'static str,
        source: Option<Box<Layer>>,
    }

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.text)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.source.as_deref().map(|s| s as _)
        }
    }

    fn layers(texts: &[&'static str]) -> Layer {
        let mut error: Option<Box<Layer>> = None;
        for text in texts.iter().rev() {
            error = Some(Box::new(Layer {
                text,
                source: error,
            }));
        }
        *error.expect("at least one layer")
    }

    #[test]
    fn an_error_chain_names_every_cause_once() {
        assert_eq!(chain(&layers(&["transport error"])), "transport error");
        assert_eq!(
            chain(&layers(&[
                "transport error",
                "tcp connect error",
                "connection refused"
            ])),
            "transport error: tcp connect error: connection refused"
        );
        // A cause the text already says is not repeated.
        assert_eq!(
            chain(&layers(&[
                "tls: invalid peer certificate: UnknownIssuer",
                "invalid peer certificate: UnknownIssuer"
            ])),
            "tls: invalid peer certificate: UnknownIssuer"
        );
    }
}
