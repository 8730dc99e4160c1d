//! What an uploaded document really is, from its first bytes: the header and the file name
//! are only claims. A PDF starts with `%PDF-`, a .docx is a ZIP (`PK\x03\x04`), text and
//! Markdown are UTF-8 without NUL bytes. Anything else (an `.exe` renamed `.pdf`) is refused.

/// Bytes looked at; the first chunk of an upload holds at least this many, or the whole file.
pub const HEAD_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentType {
    Pdf,
    Docx,
    Text,
    Markdown,
}

impl DocumentType {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Text => "text/plain",
            Self::Markdown => "text/markdown",
        }
    }
}

/// The type of a document named `file_name` whose content starts with `head`; `None` when it
/// is not one Otto takes (pdf, docx, txt, md) or its content contradicts its name.
pub fn sniff(file_name: &str, head: &[u8]) -> Option<DocumentType> {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    let content = if head.starts_with(b"%PDF-") {
        DocumentType::Pdf
    } else if head.starts_with(b"PK\x03\x04") {
        DocumentType::Docx
    } else if is_text(head) {
        DocumentType::Text
    } else {
        return None;
    };
    match (extension.as_deref(), content) {
        (Some("pdf") | None, DocumentType::Pdf) => Some(DocumentType::Pdf),
        (Some("docx"), DocumentType::Docx) => Some(DocumentType::Docx),
        (Some("md" | "markdown"), DocumentType::Text) => Some(DocumentType::Markdown),
        (Some("txt") | None, DocumentType::Text) => Some(DocumentType::Text),
        _ => None,
    }
}

/// UTF-8 without NUL bytes; a multi-byte character cut by the end of `head` still counts.
fn is_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(err) => err.error_len().is_none() && head.len() - err.valid_up_to() < 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_and_must_agree_with_the_name() {
        assert_eq!(
            sniff("price list.PDF", b"%PDF-1.7\n..."),
            Some(DocumentType::Pdf)
        );
        assert_eq!(
            sniff("notes.md", b"# Objections\n"),
            Some(DocumentType::Markdown)
        );
        assert_eq!(
            sniff("notes.txt", "caf\u{e9}".as_bytes()),
            Some(DocumentType::Text)
        );
        assert_eq!(
            sniff("playbook.docx", b"PK\x03\x04\x14\x00"),
            Some(DocumentType::Docx)
        );
        assert_eq!(sniff("upload", b"plain words"), Some(DocumentType::Text));
    }

    #[test]
    fn executables_and_lies_are_refused() {
        assert_eq!(sniff("invoice.pdf", b"MZ\x90\x00\x03\x00\x00\x00"), None);
        assert_eq!(sniff("invoice.pdf", b"just text"), None);
        assert_eq!(sniff("tool.exe", b"MZ\x90\x00"), None);
        assert_eq!(sniff("notes.txt", b"\x7fELF\x02\x01\x01\x00"), None);
        assert_eq!(sniff("archive.zip", b"PK\x03\x04"), None);
        assert_eq!(sniff("notes.txt", b"%PDF-1.4"), None);
    }

    #[test]
    fn a_character_cut_at_the_end_of_the_head_is_still_text() {
        let text = "r\u{e9}sum\u{e9}".as_bytes();
        assert_eq!(
            sniff("a.txt", &text[..text.len() - 1]),
            Some(DocumentType::Text)
        );
        assert_eq!(sniff("a.txt", b"\xff\xfe"), None);
    }
}
