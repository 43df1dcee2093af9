//! Rules over the attachments of a session's messages: executables and scripts, double
//! extensions, names hiding their extension with bidirectional controls, Office documents
//! that can carry macros, archives and disk images.
//!
//! A rule reads the message record only: the attachment's decoded file name and its part's
//! `content_kind`, classified once from the first decoded bytes while the message streamed
//! (`src/mail/magic.rs`). One finding per attachment and rule.

use super::{Rule, is_bidi_control, quoted};
use crate::mail::{AttachmentRecord, ContentKind, MimeSummary};
use crate::session::{Finding, FindingDetails, MessageRecord, SessionRecord, Severity};

/// Extensions Windows (or a desktop) runs when the file is opened: programs, scripts, their
/// hosts' formats, installers, shortcuts, control panel items, add-ins, help files with
/// script. Lower case.
pub const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "exe",
    "scr",
    "com",
    "pif",
    "bat",
    "cmd",
    "js",
    "jse",
    "vbs",
    "vbe",
    "vb",
    "wsf",
    "wsh",
    "ws",
    "hta",
    "ps1",
    "psm1",
    "msi",
    "msp",
    "mst",
    "lnk",
    "jar",
    "dll",
    "ocx",
    "cpl",
    "xll",
    "reg",
    "scf",
    "sct",
    "chm",
    "msc",
    "inf",
    "application",
    "appref-ms",
    "gadget",
    "sh",
    "command",
    "apk",
];

/// Office formats that declare macros (OOXML macro-enabled, and the binary workbook, which
/// can hold them without saying so). Lower case.
pub const MACRO_EXTENSIONS: &[&str] = &[
    "docm", "dotm", "xlsm", "xltm", "xlam", "xlsb", "pptm", "potm", "ppam", "ppsm", "sldm",
];

/// Archive and compressed-file extensions. Lower case.
pub const ARCHIVE_EXTENSIONS: &[&str] = &[
    "zip", "zipx", "rar", "7z", "gz", "tgz", "tar", "bz2", "tbz2", "xz", "txz", "cab", "ace",
    "arj", "lzh", "lha", "z",
];

/// Disk images, which Windows mounts on a double click and whose files then lose the mark of
/// the web. Lower case.
pub const DISK_IMAGE_EXTENSIONS: &[&str] = &["iso", "img", "vhd", "vhdx"];

/// Extensions a reader takes for a harmless document, picture or page: before an executable
/// extension they make a double extension. Lower case.
pub const DOCUMENT_EXTENSIONS: &[&str] = &[
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "txt", "csv",
    "htm", "html", "xml", "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "mp3", "mp4", "wav",
    "avi", "mov", "zip", "rar", "eml", "msg",
];

/// Formats that are ZIP files inside: their `zip` content is no separate archive finding.
const ZIP_CONTAINERS: &[&str] = &[
    "docx", "docm", "dotx", "dotm", "xlsx", "xlsm", "xltx", "xltm", "xlam", "pptx", "pptm", "potx",
    "potm", "ppsx", "ppsm", "ppam", "sldx", "sldm", "vsdx", "odt", "ods", "odp", "odg", "epub",
    "jar", "apk", "xpi", "xps", "oxps", "3mf", "kmz",
];

/// What the record says about one attachment.
struct Seen<'a> {
    message: &'a MessageRecord,
    attachment: &'a AttachmentRecord,
    /// The name with bidirectional and zero-width controls removed, trailing dots and
    /// blanks dropped (Windows ignores them), lower case.
    clean: Option<String>,
    extension: Option<String>,
    kind: Option<ContentKind>,
}

/// Characters that change nothing but how a name displays (zero-width ones and bidi
/// controls); removed before looking for the real extension.
fn is_invisible(c: char) -> bool {
    is_bidi_control(c) || matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
}

/// The name a file system would see, lower case, for extension matching.
fn cleaned(name: &str) -> String {
    let visible: String = name.chars().filter(|&c| !is_invisible(c)).collect();
    visible
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
        .to_lowercase()
}

/// The extension of a cleaned name (after the last dot, not the whole name).
fn extension_of(clean: &str) -> Option<&str> {
    let base = clean.rsplit(['/', '\\']).next().unwrap_or(clean);
    let (stem, ext) = base.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty() && !ext.contains(char::is_whitespace)).then_some(ext)
}

/// The extension before the last one, blanks before the last dot skipped
/// (`invoice.pdf      .exe`).
fn inner_extension(clean: &str) -> Option<&str> {
    let base = clean.rsplit(['/', '\\']).next().unwrap_or(clean);
    let (stem, _) = base.rsplit_once('.')?;
    extension_of(stem.trim_end())
}

fn content_name(kind: ContentKind) -> &'static str {
    match kind {
        ContentKind::Pe => "a Windows PE executable",
        ContentKind::Elf => "an ELF executable",
        ContentKind::MachO => "a Mach-O executable (or Java class)",
        ContentKind::Script => "a script (#! line)",
        ContentKind::WindowsShortcut => "a Windows shortcut",
        ContentKind::Ole2 => "an OLE2 compound file",
        ContentKind::Zip => "a ZIP archive",
        ContentKind::Rar => "a RAR archive",
        ContentKind::SevenZip => "a 7-Zip archive",
        ContentKind::Gzip => "gzip data",
        ContentKind::Bzip2 => "bzip2 data",
        ContentKind::Xz => "xz data",
        ContentKind::Cab => "a cabinet archive",
        ContentKind::Ace => "an ACE archive",
    }
}

/// Every attachment of every message of the session, with what its record says.
fn attachments(rec: &SessionRecord) -> Vec<Seen<'_>> {
    let mut out = Vec::new();
    for message in &rec.messages {
        let Some(mime) = message.mime.as_ref() else {
            continue;
        };
        for attachment in &mime.attachments {
            let clean = attachment.filename.as_deref().map(cleaned);
            let extension = clean.as_deref().and_then(extension_of).map(str::to_string);
            out.push(Seen {
                message,
                attachment,
                clean,
                extension,
                kind: part_kind(mime, &attachment.path),
            });
        }
    }
    out
}

fn part_kind(mime: &MimeSummary, path: &str) -> Option<ContentKind> {
    mime.parts
        .iter()
        .find(|p| p.path == path)
        .and_then(|p| p.content_kind)
}

impl Seen<'_> {
    /// `message 2 ("Invoice") attachment "a.exe" (part 2)`, quoted safely.
    fn subject(&self) -> String {
        let subject = match self
            .message
            .mime
            .as_ref()
            .and_then(|m| m.header.subject.as_deref())
        {
            Some(s) => format!("\"{}\"", quoted(s)),
            None => "no subject".to_string(),
        };
        let name = match self.attachment.filename.as_deref() {
            Some(n) => format!("\"{}\"", quoted(n)),
            None => "without a name".to_string(),
        };
        format!(
            "message {} ({subject}) attachment {name} (part {})",
            self.message.index, self.attachment.path
        )
    }

    fn finding(&self, rule: Rule, severity: Severity, what: String) -> Finding {
        let mut f = rule.finding(
            severity,
            self.message.first_seen,
            format!("{}: {what}", self.subject()),
        );
        f.details = Some(Box::new(FindingDetails {
            message_index: Some(self.message.index),
            attachment_path: Some(self.attachment.path.clone()),
            filename: self.attachment.filename.clone(),
            extension: self.extension.clone(),
            content_kind: self.kind,
            ..FindingDetails::default()
        }));
        f
    }

    fn ext_in(&self, list: &[&str]) -> Option<&str> {
        self.extension.as_deref().filter(|e| list.contains(e))
    }
}

/// Runs the attachment rules over the session's messages.
pub(super) fn attachment_findings(rec: &SessionRecord, out: &mut Vec<Finding>) {
    for seen in attachments(rec) {
        executable(&seen, out);
        double_extension(&seen, out);
        bidi_name(&seen, out);
        macro_document(&seen, out);
        archive(&seen, out);
    }
}

fn executable(seen: &Seen<'_>, out: &mut Vec<Finding>) {
    let by_name = seen.ext_in(EXECUTABLE_EXTENSIONS);
    let by_content = seen.kind.filter(|k| k.is_executable());
    let what = match (by_name, by_content) {
        (Some(ext), Some(kind)) => format!(
            "executable by name (.{ext}) and by content ({})",
            content_name(kind)
        ),
        (Some(ext), None) => format!("executable or script by name (.{ext})"),
        (None, Some(kind)) => match seen.extension.as_deref() {
            Some(ext) => format!(
                "content is {} though the name says .{}",
                content_name(kind),
                quoted(ext)
            ),
            None => format!("content is {}", content_name(kind)),
        },
        (None, None) => return,
    };
    out.push(seen.finding(Rule::ExecutableAttachment, Severity::High, what));
}

fn double_extension(seen: &Seen<'_>, out: &mut Vec<Finding>) {
    let (Some(clean), Some(outer)) = (seen.clean.as_deref(), seen.ext_in(EXECUTABLE_EXTENSIONS))
    else {
        return;
    };
    let Some(inner) = inner_extension(clean).filter(|e| DOCUMENT_EXTENSIONS.contains(e)) else {
        return;
    };
    out.push(seen.finding(
        Rule::DoubleExtension,
        Severity::High,
        format!("named like a .{inner} file but its real extension is .{outer}"),
    ));
}

fn bidi_name(seen: &Seen<'_>, out: &mut Vec<Finding>) {
    let Some(name) = seen.attachment.filename.as_deref() else {
        return;
    };
    let mut controls: Vec<String> = Vec::new();
    for c in name.chars().filter(|&c| is_bidi_control(c)) {
        let code = format!("U+{:04X}", c as u32);
        if !controls.contains(&code) {
            controls.push(code);
        }
    }
    if controls.is_empty() {
        return;
    }
    let real = match seen.extension.as_deref() {
        Some(ext) => format!("; its real extension is .{}", quoted(ext)),
        None => String::new(),
    };
    out.push(seen.finding(
        Rule::FilenameBidiControl,
        Severity::High,
        format!(
            "the name holds bidirectional control characters ({}) that reorder how it \
             displays, which can hide its extension{real}",
            controls.join(", ")
        ),
    ));
}

fn macro_document(seen: &Seen<'_>, out: &mut Vec<Finding>) {
    if let Some(ext) = seen.ext_in(MACRO_EXTENSIONS) {
        out.push(seen.finding(
            Rule::MacroDocument,
            Severity::Medium,
            format!("macro-enabled Office document by name (.{ext})"),
        ));
        return;
    }
    // An OLE2 file is a legacy Office document (or msi, msg, ...): the format that carries
    // VBA macros; whether this one does is not looked at. msi is an executable finding.
    if seen.kind == Some(ContentKind::Ole2) && seen.ext_in(&["msi", "msp", "mst", "msg"]).is_none()
    {
        out.push(
            seen.finding(
                Rule::MacroDocument,
                Severity::Low,
                "content is an OLE2 compound file (legacy Office format), which can carry VBA \
             macros"
                    .to_string(),
            ),
        );
    }
}

fn archive(seen: &Seen<'_>, out: &mut Vec<Finding>) {
    if let Some(ext) = seen.ext_in(DISK_IMAGE_EXTENSIONS) {
        out.push(seen.finding(
            Rule::ArchiveAttachment,
            Severity::Medium,
            format!(
                "disk image by name (.{ext}): opened, it mounts and its files lose the mark of \
                 the web"
            ),
        ));
        return;
    }
    let by_name = seen.ext_in(ARCHIVE_EXTENSIONS);
    // A document or program that is a ZIP file inside is not reported as an archive.
    let by_content = seen
        .kind
        .filter(|k| k.is_archive())
        .filter(|&k| k != ContentKind::Zip || seen.ext_in(ZIP_CONTAINERS).is_none());
    let what = match (by_name, by_content) {
        (Some(ext), Some(kind)) => format!(
            "archive by name (.{ext}), content is {}",
            content_name(kind)
        ),
        (Some(ext), None) => format!("archive by name (.{ext})"),
        (None, Some(kind)) => format!("content is {}", content_name(kind)),
        (None, None) => return,
    };
    out.push(seen.finding(
        Rule::ArchiveAttachment,
        Severity::Low,
        format!("{what}: its files are not scanned here"),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_extension_ignores_display_tricks() {
        assert_eq!(extension_of(&cleaned("Invoice.PDF.exe")), Some("exe"));
        assert_eq!(extension_of(&cleaned("report.exe. . ")), Some("exe"));
        assert_eq!(extension_of(&cleaned("photo\u{202e}gpj.exe")), Some("exe"));
        assert_eq!(extension_of(&cleaned("a\u{200b}.e\u{200b}xe")), Some("exe"));
        assert_eq!(extension_of(&cleaned(".bashrc")), None);
        assert_eq!(extension_of(&cleaned("README")), None);
        assert_eq!(extension_of(&cleaned("dir.v2/readme")), None);
        assert_eq!(extension_of(&cleaned("C:\\x\\a.js")), Some("js"));
        assert_eq!(
            inner_extension(&cleaned("invoice.pdf      .exe")),
            Some("pdf")
        );
        assert_eq!(inner_extension(&cleaned("setup.exe")), None);
    }

    #[test]
    fn the_lists_are_lower_case_and_disjoint_where_it_matters() {
        for list in [
            EXECUTABLE_EXTENSIONS,
            MACRO_EXTENSIONS,
            ARCHIVE_EXTENSIONS,
            DISK_IMAGE_EXTENSIONS,
            DOCUMENT_EXTENSIONS,
            ZIP_CONTAINERS,
        ] {
            for e in list {
                assert_eq!(*e, e.to_lowercase());
                assert!(!e.starts_with('.'));
            }
        }
        for e in EXECUTABLE_EXTENSIONS {
            assert!(!DOCUMENT_EXTENSIONS.contains(e), "{e}");
            assert!(!ARCHIVE_EXTENSIONS.contains(e), "{e}");
        }
    }
}
