//! A hardened XML reader and an escaping XML writer, shared by every XML dialect.
//!
//! AutoDiscover requests arrive unauthenticated from the internet, so the reader trusts nothing:
//!
//! - the body is at most [`MAX_DOCUMENT_BYTES`] long and valid UTF-8 (a leading BOM is allowed);
//! - a declared encoding other than UTF-8 is refused;
//! - any `<!DOCTYPE>` is refused outright, so there is no DTD, no entity declaration, no entity
//!   expansion (billion laughs) and no external entity (XXE);
//! - only XML's five predefined entities and character references are understood, and every
//!   character, however written, must be one XML 1.0 allows;
//! - elements nest at most [`MAX_DEPTH`] deep, a document has at most [`MAX_ELEMENTS`] elements,
//!   an element at most [`MAX_ATTRIBUTES`] attributes (namespace declarations included), a name at
//!   most [`MAX_NAME_BYTES`] and a namespace URI at most [`MAX_NAMESPACE_URI_BYTES`] bytes;
//! - names are matched by (namespace URI, local name), resolved with quick-xml's `NsReader`, never
//!   by prefix. Each distinct URI is decoded once and shared by every element in it, so a long
//!   URI costs its length once, not once per element.
//!
//! Each cap turns into its own [`XmlError`], checked before the work it bounds: attributes are
//! counted before quick-xml's duplicate check (which compares every pair) runs over them.
//!
//! The reader builds a small tree (`Element`) that the dialect decoders walk. Its size is bounded
//! by the caps above, and a tree is simpler to check than a stream of events.
//!
//! The writer (`XmlWriter`) takes element and attribute names only as `&'static str`, so a name
//! can never come from input, and escapes every value it writes, text and attributes alike.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use quick_xml::NsReader;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use thiserror::Error;

/// The largest document the reader accepts, in bytes. A real request is a few hundred bytes and a
/// real response a few KiB; the server caps bodies too, this is the codec's own limit.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// The deepest element nesting the reader accepts. The deepest AutoDiscover document nests six.
pub const MAX_DEPTH: usize = 32;

/// The most elements one document may hold. The largest real documents are a SOAP
/// `GetUserSettings` request for 100 mailboxes (about 250 elements) and a POX or SOAP response
/// with every setting (a few hundred); a 64 KiB document of real elements, at 40 bytes or more
/// each, stays under 1,700. Past this cap a body is built to cost memory, not to be answered.
pub const MAX_ELEMENTS: usize = 4096;

/// The most attributes one element may carry, namespace declarations included. Real documents
/// carry at most six (a SOAP envelope declaring `soap`, `a`, `wsa`, `xsi`, `xsd` and `t`). The cap
/// is checked before quick-xml's duplicate-attribute check, whose cost grows with the square of
/// the count.
pub const MAX_ATTRIBUTES: usize = 32;

/// The longest element or attribute name accepted, prefix included, in bytes. The longest name
/// in any AutoDiscover schema is under 45 bytes (`ExternalMailboxServerAuthenticationMethods`).
pub const MAX_NAME_BYTES: usize = 256;

/// The longest namespace URI a document may declare, in bytes, as written. The longest URI of
/// any AutoDiscover schema is 81 bytes (the POX `responseschema/2006a`).
pub const MAX_NAMESPACE_URI_BYTES: usize = 512;

/// The most namespace declarations in force at once (on an element and its ancestors). Every
/// prefixed name is looked up among them, so they multiply into the cost of each element. A
/// SOAP answer has about ten in force; declarations on siblings do not add up.
pub const MAX_NAMESPACES_IN_SCOPE: usize = 64;

/// The most characters of input an error keeps (names, reasons), so logs stay bounded.
const MAX_ERROR_SNIPPET: usize = 64;

/// Why a document was refused before any dialect looked at it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The body is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("the document is {length} bytes long; at most {limit} are accepted")]
    TooLarge {
        /// The body's length.
        length: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The body is not valid UTF-8.
    #[error("the document is not valid UTF-8 (first invalid byte at offset {offset})")]
    InvalidUtf8 {
        /// Offset of the first byte that is not part of a valid UTF-8 sequence.
        offset: usize,
    },
    /// The XML declaration names an encoding other than UTF-8.
    #[error("the document declares the encoding {encoding:?}; only UTF-8 is accepted")]
    UnsupportedEncoding {
        /// The declared encoding (truncated).
        encoding: String,
    },
    /// The document has a `<!DOCTYPE>`: DTDs are refused, which rules out entity expansion and
    /// external entities.
    #[error("the document has a document type declaration; DTDs are refused")]
    DoctypeRefused,
    /// An entity reference other than XML's five predefined ones.
    #[error("the document references the entity &{name}; only XML's predefined entities are known")]
    UnknownEntity {
        /// The entity's name (truncated).
        name: String,
    },
    /// A character XML 1.0 does not allow, written literally or as a character reference.
    #[error("the document contains the character U+{code_point:04X}, which XML does not allow")]
    IllegalCharacter {
        /// The character's code point.
        code_point: u32,
    },
    /// Elements nest deeper than [`MAX_DEPTH`].
    #[error("elements are nested more than {limit} deep")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// The document has more than [`MAX_ELEMENTS`] elements.
    #[error("the document has more than {limit} elements")]
    TooManyElements {
        /// The limit in force.
        limit: usize,
    },
    /// An element has more than [`MAX_ATTRIBUTES`] attributes.
    #[error("an element has more than {limit} attributes")]
    TooManyAttributes {
        /// The limit in force.
        limit: usize,
    },
    /// An element or attribute name is longer than [`MAX_NAME_BYTES`].
    #[error("a name is {length} bytes long; at most {limit} are accepted")]
    NameTooLong {
        /// The name's length in bytes.
        length: usize,
        /// The limit in force.
        limit: usize,
    },
    /// More namespace declarations are in force than [`MAX_NAMESPACES_IN_SCOPE`].
    #[error("more than {limit} namespace declarations are in force at once")]
    TooManyNamespaces {
        /// The limit in force.
        limit: usize,
    },
    /// A namespace URI is longer than [`MAX_NAMESPACE_URI_BYTES`].
    #[error("a namespace URI is {length} bytes long; at most {limit} are accepted")]
    NamespaceTooLong {
        /// The URI's length in bytes, as written.
        length: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A namespace prefix that no `xmlns:` attribute declares.
    #[error("the namespace prefix {prefix:?} is not declared")]
    UnboundPrefix {
        /// The prefix (truncated).
        prefix: String,
    },
    /// No root element at all.
    #[error("the document has no root element")]
    NoRootElement,
    /// Text or a second element outside the root element.
    #[error("the document has content outside its root element")]
    ContentOutsideRoot,
    /// Not well-formed XML.
    #[error("the document is not well-formed XML near byte {position}: {reason}")]
    Malformed {
        /// Byte offset where the reader gave up.
        position: u64,
        /// What the XML reader reported (truncated).
        reason: String,
    },
}

/// One element of a parsed document: its resolved name, attributes, children and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    /// The namespace URI the element's name resolved to; `None` when unqualified. Shared by
    /// every element in the same namespace.
    pub(crate) namespace: Option<Arc<str>>,
    /// The local part of the element's name.
    pub(crate) local_name: String,
    /// Unqualified attributes as (name, unescaped value). Namespace declarations and attributes
    /// with a prefix are not kept: no AutoDiscover dialect uses qualified attributes.
    pub(crate) attributes: Vec<(String, String)>,
    /// Child elements in document order.
    pub(crate) children: Vec<Element>,
    /// All character data directly inside this element, unescaped and concatenated.
    pub(crate) text: String,
}

/// Two children where the dialect allows one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DuplicateChild;

impl Element {
    fn new(namespace: Option<Arc<str>>, local_name: String) -> Self {
        Self {
            namespace,
            local_name,
            attributes: Vec::new(),
            children: Vec::new(),
            text: String::new(),
        }
    }

    /// Whether this element is `local_name` in `namespace`.
    pub(crate) fn is(&self, namespace: &str, local_name: &str) -> bool {
        self.local_name == local_name && self.namespace.as_deref() == Some(namespace)
    }

    /// The children named `local_name` in `namespace`.
    pub(crate) fn children_named<'a, 'n>(
        &'a self,
        namespace: &'n str,
        local_name: &'n str,
    ) -> impl Iterator<Item = &'a Element> + use<'a, 'n> {
        self.children
            .iter()
            .filter(move |child| child.is(namespace, local_name))
    }

    /// The one child named `local_name` in `namespace`, if any; two of them is an error.
    pub(crate) fn child(
        &self,
        namespace: &str,
        local_name: &str,
    ) -> Result<Option<&Element>, DuplicateChild> {
        let mut found = self.children_named(namespace, local_name);
        let first = found.next();
        if found.next().is_some() {
            return Err(DuplicateChild);
        }
        Ok(first)
    }

    /// The value of the unqualified attribute `name`.
    pub(crate) fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The element's text with XML white space trimmed, or `None` when it has child elements
    /// (a value that is not plain text).
    pub(crate) fn leaf_text(&self) -> Option<&str> {
        self.children
            .is_empty()
            .then(|| self.text.trim_matches(is_xml_space))
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Whether XML 1.0 allows `c` in a document (the `Char` production, XML 1.0 section 2.2).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r')
        || ('\u{20}'..='\u{D7FF}').contains(&c)
        || ('\u{E000}'..='\u{FFFD}').contains(&c)
        || c >= '\u{10000}'
}

fn check_chars(value: &str) -> Result<(), XmlError> {
    match value.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(XmlError::IllegalCharacter {
            code_point: u32::from(c),
        }),
        None => Ok(()),
    }
}

/// Shortens input quoted in an error to [`MAX_ERROR_SNIPPET`] characters.
pub(crate) fn snippet(value: &str) -> String {
    match value.char_indices().nth(MAX_ERROR_SNIPPET) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

fn snippet_bytes(value: &[u8]) -> String {
    snippet(&String::from_utf8_lossy(value))
}

/// Parses a whole document under the limits described in the module docs.
pub(crate) fn parse_document(input: &[u8]) -> Result<Element, XmlError> {
    if input.len() > MAX_DOCUMENT_BYTES {
        return Err(XmlError::TooLarge {
            length: input.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let text = std::str::from_utf8(input).map_err(|e| XmlError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    // Characters outside XML's range are refused up front, wherever they stand.
    check_chars(text.strip_prefix('\u{FEFF}').unwrap_or(text))?;
    Parser::new(text).run()
}

struct Parser<'i> {
    reader: NsReader<&'i [u8]>,
    /// Open elements, innermost last.
    stack: Vec<Element>,
    root: Option<Element>,
    /// Whether anything but the XML declaration has been read (a declaration must come first).
    started: bool,
    /// Elements opened so far, checked against [`MAX_ELEMENTS`].
    elements: usize,
    /// How many namespaces each open element declares, innermost last, and their sum.
    declared: Vec<usize>,
    in_scope: usize,
    namespaces: NamespaceTable,
}

impl<'i> Parser<'i> {
    fn new(text: &'i str) -> Self {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut reader = NsReader::from_str(text);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_dangling_amp = false;
        config.allow_unmatched_ends = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Self {
            reader,
            stack: Vec::new(),
            root: None,
            started: false,
            elements: 0,
            declared: Vec::new(),
            in_scope: 0,
            namespaces: NamespaceTable::default(),
        }
    }

    fn malformed(&self, reason: impl std::fmt::Display) -> XmlError {
        XmlError::Malformed {
            position: self.reader.error_position(),
            reason: snippet(&reason.to_string()),
        }
    }

    fn run(mut self) -> Result<Element, XmlError> {
        loop {
            let (namespace, event) = match self.reader.read_resolved_event() {
                // Only start tags need their namespace: end tags are matched by name.
                Ok((namespace, event @ (Event::Start(_) | Event::Empty(_)))) => {
                    (self.namespaces.intern(namespace)?, event)
                }
                Ok((_, event)) => (None, event),
                Err(error) => return Err(self.map_error(error)),
            };
            match event {
                Event::Decl(decl) => {
                    if self.started {
                        return Err(self.malformed("an XML declaration after the start"));
                    }
                    if let Some(encoding) = decl.encoding() {
                        let encoding = encoding.map_err(|e| self.malformed(e))?;
                        if !encoding.eq_ignore_ascii_case(b"utf-8") {
                            return Err(XmlError::UnsupportedEncoding {
                                encoding: snippet_bytes(&encoding),
                            });
                        }
                    }
                }
                Event::DocType(_) => return Err(XmlError::DoctypeRefused),
                Event::Start(start) => {
                    let (element, declarations) = self.open(namespace, &start)?;
                    self.stack.push(element);
                    self.declared.push(declarations);
                    self.in_scope += declarations;
                }
                Event::Empty(start) => {
                    let (element, _) = self.open(namespace, &start)?;
                    self.close(element)?;
                }
                Event::End(_) => match self.stack.pop() {
                    Some(element) => {
                        self.in_scope -= self.declared.pop().unwrap_or_default();
                        self.close(element)?;
                    }
                    None => return Err(self.malformed("an end tag without a start tag")),
                },
                Event::Text(text) => {
                    let text = text.xml10_content().map_err(|e| self.malformed(e))?;
                    self.push_text(&text)?;
                }
                Event::CData(data) => {
                    let data = data.xml10_content().map_err(|e| self.malformed(e))?;
                    if self.stack.is_empty() {
                        return Err(XmlError::ContentOutsideRoot);
                    }
                    self.push_text(&data)?;
                }
                Event::GeneralRef(reference) => {
                    let resolved = self.resolve_reference(&reference)?;
                    if self.stack.is_empty() {
                        return Err(XmlError::ContentOutsideRoot);
                    }
                    self.push_text(&resolved)?;
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
            self.started = true;
        }
        if !self.stack.is_empty() {
            return Err(self.malformed("the document ends inside an element"));
        }
        self.root.ok_or(XmlError::NoRootElement)
    }

    fn map_error(&self, error: quick_xml::Error) -> XmlError {
        use quick_xml::escape::EscapeError;
        match error {
            quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
                XmlError::UnknownEntity {
                    name: snippet(&name),
                }
            }
            quick_xml::Error::Namespace(quick_xml::name::NamespaceError::UnknownPrefix(prefix)) => {
                XmlError::UnboundPrefix {
                    prefix: snippet_bytes(&prefix),
                }
            }
            other => self.malformed(other),
        }
    }

    /// Checks the caps a start tag counts against, before any work that grows with it.
    fn check_caps(&mut self, start: &BytesStart<'_>) -> Result<(), XmlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(XmlError::TooDeep { limit: MAX_DEPTH });
        }
        if self.elements >= MAX_ELEMENTS {
            return Err(XmlError::TooManyElements {
                limit: MAX_ELEMENTS,
            });
        }
        self.elements += 1;
        check_name_length(start.name().as_ref())?;
        // Counting without checks costs one pass; the checked pass below compares every pair.
        if start
            .attributes()
            .with_checks(false)
            .take(MAX_ATTRIBUTES + 1)
            .count()
            > MAX_ATTRIBUTES
        {
            return Err(XmlError::TooManyAttributes {
                limit: MAX_ATTRIBUTES,
            });
        }
        Ok(())
    }

    /// Builds the element for a start tag, checking caps, names and attributes; also returns
    /// how many namespaces it declares.
    fn open(
        &mut self,
        namespace: Option<Arc<str>>,
        start: &BytesStart<'_>,
    ) -> Result<(Element, usize), XmlError> {
        self.check_caps(start)?;
        if self.stack.is_empty() && self.root.is_some() {
            return Err(XmlError::ContentOutsideRoot);
        }
        let local_name = std::str::from_utf8(start.local_name().into_inner())
            .map_err(|e| self.malformed(e))?
            .to_owned();
        let mut element = Element::new(namespace, local_name);
        let mut declarations = 0;
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|e| self.malformed(e))?;
            let key = attribute.key;
            check_name_length(key.as_ref())?;
            if key.as_namespace_binding().is_some() {
                // Declarations nobody uses are bounded too.
                check_namespace_length(&attribute.value)?;
                declarations += 1;
                if self.in_scope + declarations > MAX_NAMESPACES_IN_SCOPE {
                    return Err(XmlError::TooManyNamespaces {
                        limit: MAX_NAMESPACES_IN_SCOPE,
                    });
                }
                continue;
            }
            // Resolving also rejects undeclared prefixes.
            let qualified = match self.reader.resolve_attribute(key).0 {
                ResolveResult::Bound(_) => true,
                ResolveResult::Unbound => false,
                ResolveResult::Unknown(prefix) => {
                    return Err(XmlError::UnboundPrefix {
                        prefix: snippet_bytes(&prefix),
                    });
                }
            };
            let value = attribute
                .decode_and_unescape_value_with(self.reader.decoder(), |entity| {
                    quick_xml::escape::resolve_xml_entity(entity)
                })
                .map_err(|e| self.map_error(e))?;
            check_chars(&value)?;
            if !qualified {
                let name = std::str::from_utf8(key.local_name().into_inner())
                    .map_err(|e| self.malformed(e))?
                    .to_owned();
                element.attributes.push((name, value.into_owned()));
            }
        }
        Ok((element, declarations))
    }

    /// Attaches a finished element to its parent, or makes it the root.
    fn close(&mut self, element: Element) -> Result<(), XmlError> {
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(element),
            None if self.root.is_none() => self.root = Some(element),
            None => return Err(XmlError::ContentOutsideRoot),
        }
        Ok(())
    }

    fn push_text(&mut self, text: &str) -> Result<(), XmlError> {
        match self.stack.last_mut() {
            Some(element) => {
                element.text.push_str(text);
                Ok(())
            }
            // White space around the root element is allowed; anything else is not.
            None if text.chars().all(is_xml_space) => Ok(()),
            None => Err(XmlError::ContentOutsideRoot),
        }
    }

    /// Resolves `&name;` or `&#n;`: character references and XML's five predefined entities only.
    fn resolve_reference(&self, reference: &BytesRef<'_>) -> Result<Cow<'static, str>, XmlError> {
        if reference.is_char_ref() {
            let c = reference
                .resolve_char_ref()
                .map_err(|e| self.map_error(e))?
                .ok_or_else(|| self.malformed("an empty character reference"))?;
            if !is_xml_char(c) {
                return Err(XmlError::IllegalCharacter {
                    code_point: u32::from(c),
                });
            }
            return Ok(Cow::Owned(c.to_string()));
        }
        let name = reference.decode().map_err(|e| self.malformed(e))?;
        match quick_xml::escape::resolve_xml_entity(&name) {
            Some(value) => Ok(Cow::Borrowed(value)),
            None => Err(XmlError::UnknownEntity {
                name: snippet(&name),
            }),
        }
    }
}

fn check_name_length(name: &[u8]) -> Result<(), XmlError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(XmlError::NameTooLong {
            length: name.len(),
            limit: MAX_NAME_BYTES,
        });
    }
    Ok(())
}

fn check_namespace_length(uri: &[u8]) -> Result<(), XmlError> {
    if uri.len() > MAX_NAMESPACE_URI_BYTES {
        return Err(XmlError::NamespaceTooLong {
            length: uri.len(),
            limit: MAX_NAMESPACE_URI_BYTES,
        });
    }
    Ok(())
}

/// The namespace URIs of one document, each decoded once: elements share them instead of each
/// holding a copy.
#[derive(Default)]
struct NamespaceTable {
    /// Decoded URIs by their bytes as written (before references are expanded).
    by_raw: HashMap<Box<[u8]>, Arc<str>>,
}

impl NamespaceTable {
    /// The shared URI an element's name resolved to.
    fn intern(&mut self, namespace: ResolveResult<'_>) -> Result<Option<Arc<str>>, XmlError> {
        let raw = match namespace {
            ResolveResult::Bound(namespace) => namespace.into_inner(),
            ResolveResult::Unbound => return Ok(None),
            ResolveResult::Unknown(prefix) => {
                return Err(XmlError::UnboundPrefix {
                    prefix: snippet_bytes(&prefix),
                });
            }
        };
        check_namespace_length(raw)?;
        if let Some(uri) = self.by_raw.get(raw) {
            return Ok(Some(Arc::clone(uri)));
        }
        let uri: Arc<str> = Arc::from(decode_namespace(raw)?);
        self.by_raw.insert(raw.into(), Arc::clone(&uri));
        Ok(Some(uri))
    }
}

/// A namespace URI with references in the declaring attribute expanded.
fn decode_namespace(raw: &[u8]) -> Result<String, XmlError> {
    // The input was checked to be UTF-8, so this is lossless.
    let raw = String::from_utf8_lossy(raw);
    let uri = quick_xml::escape::unescape_with(&raw, quick_xml::escape::resolve_xml_entity)
        .map_err(|_| XmlError::Malformed {
            position: 0,
            reason: format!("the namespace name {:?} has a bad reference", snippet(&raw)),
        })?;
    check_chars(&uri)?;
    Ok(uri.into_owned())
}

/// The declaration every document autodisco writes starts with, byte for byte.
pub(crate) const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="utf-8"?>"#;

/// Writes an indented UTF-8 document, escaping every value.
///
/// Names are `&'static str`: they come from this crate's code, never from input. Values are
/// escaped for their context, and characters XML cannot carry are replaced by U+FFFD so the
/// output is always well-formed.
pub(crate) struct XmlWriter {
    out: String,
    open: Vec<&'static str>,
}

impl XmlWriter {
    /// Starts a document with [`XML_DECLARATION`] and no leading white space.
    pub(crate) fn new() -> Self {
        let mut out = String::with_capacity(2048);
        out.push_str(XML_DECLARATION);
        Self {
            out,
            open: Vec::new(),
        }
    }

    fn indent(&mut self) {
        self.out.push('\n');
        for _ in 0..self.open.len() {
            self.out.push_str("  ");
        }
    }

    fn tag(&mut self, name: &'static str, attributes: &[(&'static str, &str)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attributes {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value, true);
            self.out.push('"');
        }
    }

    /// Opens an element; close it with [`XmlWriter::end`].
    pub(crate) fn start(&mut self, name: &'static str, attributes: &[(&'static str, &str)]) {
        self.tag(name, attributes);
        self.out.push('>');
        self.open.push(name);
    }

    /// Closes the innermost open element.
    pub(crate) fn end(&mut self) {
        if let Some(name) = self.open.pop() {
            self.indent();
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
    }

    /// Writes `<name>text</name>`, or `<name />` when the text is empty.
    pub(crate) fn leaf(&mut self, name: &'static str, text: &str) {
        self.leaf_with(name, &[], text);
    }

    /// Writes an element with attributes and text content.
    pub(crate) fn leaf_with(
        &mut self,
        name: &'static str,
        attributes: &[(&'static str, &str)],
        text: &str,
    ) {
        self.tag(name, attributes);
        if text.is_empty() {
            self.out.push_str(" />");
        } else {
            self.out.push('>');
            escape_into(&mut self.out, text, false);
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
    }

    /// Writes `<name>text</name>` when `text` is set.
    pub(crate) fn optional_leaf(&mut self, name: &'static str, text: Option<&str>) {
        if let Some(text) = text {
            self.leaf(name, text);
        }
    }

    /// Closes every open element and returns the document, ending with a newline.
    pub(crate) fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.end();
        }
        self.out.push('\n');
        self.out
    }
}

/// Appends `value` escaped for element text (`attribute == false`) or a double-quoted attribute.
fn escape_into(out: &mut String, value: &str, attribute: bool) {
    // Copies runs of plain bytes as whole slices: almost every value needs no escaping at all.
    let bytes = value.as_bytes();
    let mut plain_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (replacement, width) = match bytes[i] {
            b'&' => ("&amp;", 1),
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'"' if attribute => ("&quot;", 1),
            b'\'' if attribute => ("&apos;", 1),
            // A literal CR would be folded into LF by the reader (XML 1.0 section 2.11), and white
            // space in attributes into spaces (section 3.3.3): references keep them as they are.
            b'\r' => ("&#13;", 1),
            b'\n' if attribute => ("&#10;", 1),
            b'\t' if attribute => ("&#9;", 1),
            b'\n' | b'\t' => {
                i += 1;
                continue;
            }
            // Control characters are not XML 1.0 characters (section 2.2).
            0x00..=0x1f => ("\u{FFFD}", 1),
            // U+FFFE and U+FFFF (EF BF BE, EF BF BF) are not XML characters either.
            0xef if bytes.get(i + 1) == Some(&0xbf)
                && matches!(bytes.get(i + 2), Some(0xbe | 0xbf)) =>
            {
                ("\u{FFFD}", 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&value[plain_from..i]);
        out.push_str(replacement);
        i += width;
        plain_from = i;
    }
    out.push_str(&value[plain_from..]);
}

/// Escapes a value for element text or a double-quoted attribute. Exposed for the dialects that
/// only need one escaped value; whole documents go through [`XmlWriter`].
#[cfg(test)]
fn escape(value: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(value.len());
    escape_into(&mut out, value, attribute);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Result<Element, XmlError> {
        parse_document(input.as_bytes())
    }

    #[test]
    fn resolves_namespaces_not_prefixes() {
        let root = parse(
            r#"<?xml version="1.0" encoding="UTF-8"?>
            <a:Root xmlns:a="urn:one" xmlns="urn:two"><Child x="1">t&amp;&#x41;<![CDATA[<c>]]></Child><a:Other/></a:Root>"#,
        )
        .unwrap();
        assert!(root.is("urn:one", "Root"));
        let child = root.child("urn:two", "Child").unwrap().unwrap();
        assert_eq!(child.text, "t&A<c>");
        assert_eq!(child.attribute("x"), Some("1"));
        assert!(root.child("urn:one", "Other").unwrap().is_some());
        assert!(root.child("urn:two", "Other").unwrap().is_none());
    }

    #[test]
    fn refuses_doctype_and_entities() {
        assert_eq!(
            parse(r#"<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>"#),
            Err(XmlError::DoctypeRefused)
        );
        assert!(matches!(
            parse("<a>&x;</a>"),
            Err(XmlError::UnknownEntity { name }) if name == "x"
        ));
        assert!(matches!(
            parse(r#"<a b="&x;"/>"#),
            Err(XmlError::UnknownEntity { .. })
        ));
        assert!(matches!(
            parse("<a>&#1;</a>"),
            Err(XmlError::IllegalCharacter { code_point: 1 })
        ));
        assert!(matches!(
            parse("<a>\u{1}</a>"),
            Err(XmlError::IllegalCharacter { code_point: 1 })
        ));
        assert!(matches!(
            parse("<a>&#0;</a>"),
            Err(XmlError::Malformed { .. })
        ));
    }

    #[test]
    fn refuses_structural_problems() {
        assert_eq!(parse(""), Err(XmlError::NoRootElement));
        assert_eq!(parse("<a/><b/>"), Err(XmlError::ContentOutsideRoot));
        assert_eq!(parse("x<a/>"), Err(XmlError::ContentOutsideRoot));
        assert!(matches!(parse("<a>"), Err(XmlError::Malformed { .. })));
        assert!(matches!(parse("<a></b>"), Err(XmlError::Malformed { .. })));
        assert!(matches!(
            parse("<p:a/>"),
            Err(XmlError::UnboundPrefix { .. })
        ));
        assert!(matches!(
            parse(r#"<a x="1" x="2"/>"#),
            Err(XmlError::Malformed { .. })
        ));
        assert!(matches!(
            parse(r#"<?xml version="1.0" encoding="ISO-8859-1"?><a/>"#),
            Err(XmlError::UnsupportedEncoding { .. })
        ));
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(parse(&deep), Err(XmlError::TooDeep { limit: MAX_DEPTH }));
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn caps_hold_at_their_limits() {
        let children = |n: usize| format!("<r>{}</r>", "<c/>".repeat(n));
        assert!(parse(&children(MAX_ELEMENTS - 1)).is_ok());
        assert_eq!(
            parse(&children(MAX_ELEMENTS)),
            Err(XmlError::TooManyElements {
                limit: MAX_ELEMENTS
            })
        );

        let attributes = |n: usize| {
            let list: String = (0..n).map(|i| format!(" a{i}=\"\"")).collect();
            format!("<r{list}/>")
        };
        assert_eq!(
            parse(&attributes(MAX_ATTRIBUTES)).unwrap().attributes.len(),
            MAX_ATTRIBUTES
        );
        assert_eq!(
            parse(&attributes(MAX_ATTRIBUTES + 1)),
            Err(XmlError::TooManyAttributes {
                limit: MAX_ATTRIBUTES
            })
        );
        // Declarations count as attributes: they cost quick-xml the same.
        let declarations: String = (0..=MAX_ATTRIBUTES)
            .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
            .collect();
        assert!(matches!(
            parse(&format!("<r{declarations}/>")),
            Err(XmlError::TooManyAttributes { .. })
        ));

        // Declarations in force add up down the tree, not across siblings.
        let declare = |from: usize, count: usize| -> String {
            (from..from + count)
                .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
                .collect()
        };
        let half = MAX_NAMESPACES_IN_SCOPE / 2;
        let siblings = format!(
            "<r{}><c{}/><c{}/></r>",
            declare(0, half),
            declare(half, half),
            declare(half, half)
        );
        assert!(parse(&siblings).is_ok());
        let nested = |innermost: usize| {
            format!(
                "<r{}><c{}><g{}/></c></r>",
                declare(0, half),
                declare(half, half),
                declare(2 * half, innermost)
            )
        };
        assert!(parse(&nested(0)).is_ok());
        assert_eq!(
            parse(&nested(1)),
            Err(XmlError::TooManyNamespaces {
                limit: MAX_NAMESPACES_IN_SCOPE
            })
        );

        let name = "n".repeat(MAX_NAME_BYTES);
        assert!(parse(&format!("<{name}/>")).is_ok());
        assert!(matches!(
            parse(&format!("<{name}x/>")),
            Err(XmlError::NameTooLong { length, .. }) if length == MAX_NAME_BYTES + 1
        ));
        assert!(matches!(
            parse(&format!("<r {name}x=\"1\"/>")),
            Err(XmlError::NameTooLong { .. })
        ));

        let uri = format!("urn:{}", "u".repeat(MAX_NAMESPACE_URI_BYTES - 4));
        assert_eq!(
            parse(&format!("<r xmlns=\"{uri}\"/>"))
                .unwrap()
                .namespace
                .as_deref(),
            Some(uri.as_str())
        );
        for declaration in ["xmlns", "xmlns:unused"] {
            assert!(matches!(
                parse(&format!("<r {declaration}=\"{uri}x\"/>")),
                Err(XmlError::NamespaceTooLong { length, .. })
                    if length == MAX_NAMESPACE_URI_BYTES + 1
            ));
        }
    }

    /// The attack from issue 10: a root with a 30 KB default namespace and 8,000 empty
    /// children, 62 KB in all, used to copy the URI into every element (240 MB). It is refused
    /// at the root now, and the same body with a real URI stops at the element cap.
    #[test]
    fn namespace_amplification_is_refused() {
        let attack = |uri: &str| format!("<r xmlns=\"{uri}\">{}</r>", "<c/>".repeat(8_000));
        let long = attack(&format!("urn:{}", "x".repeat(30_000)));
        assert!(long.len() > 62_000 && long.len() <= MAX_DOCUMENT_BYTES);
        assert!(matches!(
            parse(&long),
            Err(XmlError::NamespaceTooLong { length: 30_004, .. })
        ));
        assert_eq!(
            parse(&attack("urn:x")),
            Err(XmlError::TooManyElements {
                limit: MAX_ELEMENTS
            })
        );
    }

    #[test]
    fn elements_share_their_namespace() {
        let root = parse(r#"<r xmlns="urn:shared"><c/><c/></r>"#).unwrap();
        let [first, second] = [&root.children[0], &root.children[1]];
        let (Some(a), Some(b), Some(r)) = (&first.namespace, &second.namespace, &root.namespace)
        else {
            panic!("every element is in urn:shared")
        };
        assert!(Arc::ptr_eq(a, b) && Arc::ptr_eq(a, r));
    }

    #[test]
    fn checks_size_and_utf8_first() {
        let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert!(matches!(
            parse_document(&big),
            Err(XmlError::TooLarge { .. })
        ));
        assert_eq!(
            parse_document(b"<a>\xff</a>"),
            Err(XmlError::InvalidUtf8 { offset: 3 })
        );
        assert!(parse_document("\u{FEFF}<a/>".as_bytes()).is_ok());
    }

    #[test]
    fn writer_escapes_everything() {
        assert_eq!(escape("<a&b>\"'\r", false), "&lt;a&amp;b&gt;\"'&#13;");
        assert_eq!(
            escape("<a&b>\"'\n\t", true),
            "&lt;a&amp;b&gt;&quot;&apos;&#10;&#9;"
        );
        assert_eq!(escape("a\u{1}b", false), "a\u{FFFD}b");
        assert_eq!(
            escape("\u{FFFE}é\u{FFFF}\u{FFFD}日本", false),
            "\u{FFFD}é\u{FFFD}\u{FFFD}日本"
        );
        assert_eq!(
            escape("plain text, nothing to do", true),
            "plain text, nothing to do"
        );

        let mut writer = XmlWriter::new();
        writer.start("Root", &[("xmlns", "urn:x"), ("Attr", "\"<v>\"")]);
        writer.leaf("Leaf", "</Leaf><Evil>&");
        writer.leaf("Empty", "");
        let xml = writer.finish();
        assert!(xml.starts_with(XML_DECLARATION));
        let root = parse(&xml).unwrap();
        assert_eq!(root.attribute("Attr"), Some("\"<v>\""));
        assert_eq!(
            root.child("urn:x", "Leaf").unwrap().unwrap().text,
            "</Leaf><Evil>&"
        );
        assert_eq!(root.children.len(), 2);
    }
}
