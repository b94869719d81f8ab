/// Escapes text for HTML and SVG, in element content and in attribute values quoted with `"` or
/// `'` (`&`, `<`, `>`, `"`, `'`): the one escape of every report page (experiment, paper, audit).
public func escapeHTML(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        .replacingOccurrences(of: "'", with: "&#39;")
}
