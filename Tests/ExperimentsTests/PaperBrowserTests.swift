import Foundation
import Glibc
import TestSupport
import Testing

@testable import Experiments

/// The paper report opened in a real browser: Debian's chromium-headless-shell (installed by
/// scripts/setup.sh) renders the tiny preset's report.html, and a script of the test's own page
/// (the report stays script-free) reads what was laid out and decoded. The browser's proxy is a
/// listener the test owns, so any load from outside the page arrives there.
@Suite struct PaperBrowserTests {
    /// Tables I and II as published (Ismail et al. 2023): each row's label, the Original Images
    /// value and the Synthetic Images value, as the report prints them.
    static let published: [[[String]]] = [
        [
            ["Train accuracy", "0.955", "1.00"], ["Validation accuracy", "0.722", "1.00"], ["Precision normal", "0.69", "0.60"],
            ["Recall normal", "1.00", "1.00"], ["Precision pneumonia", "0.00", "0.00"], ["Recall pneumonia", "0.00", "0.00"],
            ["Number of images", "362", "2500"],
        ],
        [
            ["Train accuracy", "0.048", "0.132"], ["Validation accuracy", "0.051", "0.732"],
            ["Precision benign", "0.51", "0.39"],
            ["Recall benign", "1.00", "1.00"], ["Precision malignant", "0.00", "0.00"], ["Recall malignant", "0.00", "0.00"],
            ["Precision vascular_lesion", "0.00", "0.00"], ["Recall vascular_lesion", "0.00", "0.00"],
            ["Precision dermatofibroma", "0.00", "0.00"], ["Recall dermatofibroma", "0.00", "0.00"],
            ["Number of images", "3550", "3800"],
        ],
    ]

    /// The page is opened twice in one browser: as written, and as a copy without its
    /// Content-Security-Policy. The copy shows the markup itself loads nothing (the policy would
    /// hide a load by refusing it); the original shows the policy blocks nothing the page needs:
    /// both render the same tables (with the published values), curves, confusion matrices and
    /// decoded sample strips.
    @Test func theReportRendersInAHeadlessBrowserAndLoadsNothingFromOutside() async throws {
        let chromium = try #require(
            headlessChromium(), "chromium-headless-shell is not installed: run scripts/setup.sh")
        let tiny = try await TinyPaperReport.get()
        let report = tiny.folder.appendingPathComponent("report.html")
        let page = try String(contentsOf: report, encoding: .utf8)
        let policy = "<meta http-equiv=\"Content-Security-Policy\" content=\"\(PaperReport.contentSecurityPolicy)\">"
        #expect(page.contains(policy))
        let work = URL(fileURLWithPath: try makeTemporaryFolder())
        defer { removeTemporary(work.path) }
        let bare = work.appendingPathComponent("report-without-policy.html")
        try Data(page.replacingOccurrences(of: policy, with: "").utf8).write(to: bare)

        let (frames, requests) = try await render([report, bare], in: work, browser: chromium)
        #expect(requests.isEmpty, "the page loaded from outside: \(requests)")
        try #require(frames.count == 2)
        #expect(frames[0] == frames[1], "the Content-Security-Policy changed what the page shows")
        let shown = frames[0]
        let datasets = tiny.report.datasets
        try #require(
            shown.tables.count == datasets.count && shown.curves.count == datasets.count
                && shown.confusion.count == datasets.count && shown.strips.count == datasets.count,
            "\(shown)")
        for (k, r) in datasets.enumerated() {
            let table = shown.tables[k], (header, rows) = PaperReport.table(r)
            #expect(table.id == "table-\(k + 1)" && table.width > 0)
            #expect(table.rows == [header] + rows)
            #expect(table.rows.dropFirst().map { [$0[0], $0[1], $0[3]] } == Self.published[k], "\(table.rows)")

            // Accuracy and loss of both runs, each a train and a validation line over the epochs.
            let runs = [r.original, r.original, r.synthetic, r.synthetic]
            #expect(shown.curves[k].count == runs.count)
            for (chart, run) in zip(shown.curves[k], runs) {
                #expect(chart.width > 0 && chart.lines.count == 2)
                #expect(chart.lines.allSatisfy { $0.points == run.curves.count && $0.width > 0 }, "\(chart)")
            }
            #expect(shown.confusion[k].map(\.cells) == [r.original, r.synthetic].map { $0.test.confusionMatrix.flatMap { $0 } })
            #expect(shown.confusion[k].allSatisfy { $0.width > 0 })

            // One strip per class, decoded at the PNG's own size into more than one colour, shown at the page's width.
            #expect(shown.strips[k].count == r.strips.count)
            for (strip, png) in zip(shown.strips[k], r.strips) {
                let size = try #require(pngSize(png.pngBase64))
                #expect(strip.complete && strip.width == size.width && strip.height == size.height, "\(png.className)")
                #expect(strip.colours > 1 && strip.shownWidth == 320, "\(png.className): \(strip)")
            }
        }
    }

    /// What the test page's script reads from one framed report.
    struct Frame: Decodable, Equatable {
        struct Table: Decodable, Equatable {
            let id: String
            let width: Double
            let rows: [[String]]
        }
        struct Line: Decodable, Equatable {
            let points: Int
            let width: Double
        }
        struct Chart: Decodable, Equatable {
            let width: Double
            let lines: [Line]
        }
        struct Heatmap: Decodable, Equatable {
            let width: Double
            /// Each cell's number, row by row.
            let cells: [Int]
        }
        struct Strip: Decodable, Equatable {
            let complete: Bool
            let width: Int
            let height: Int
            let shownWidth: Double
            /// Distinct colours among the decoded pixels (0 when nothing decoded).
            let colours: Int
        }
        let tables: [Table]
        /// Per dataset (each `.row.curves`), its charts.
        let curves: [[Chart]]
        let confusion: [[Heatmap]]
        let strips: [[Strip]]
    }

    /// The test's own page: the reports in frames, and on load a script that reads each frame's
    /// tables, charts and images (drawing each image on a canvas to count its decoded colours)
    /// and writes the lot as JSON into `#result`.
    static let inspector = """
        function colours(img) {
          if (!img.complete || img.naturalWidth == 0) return 0;
          const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
          const g = c.getContext('2d'); g.drawImage(img, 0, 0);
          const p = g.getImageData(0, 0, c.width, c.height).data, seen = new Set();
          for (let i = 0; i < p.length; i += 4) seen.add((p[i] << 16) | (p[i + 1] << 8) | p[i + 2]);
          return seen.size;
        }
        function inspect(d) {
          const width = e => e.getBoundingClientRect().width, all = (e, s) => [...e.querySelectorAll(s)];
          return {
            tables: all(d, 'table.paper-table').map(t => ({
              id: t.id, width: width(t), rows: [...t.rows].map(r => [...r.cells].map(c => c.textContent.trim())) })),
            curves: all(d, '.row.curves').map(row => all(row, 'svg').map(svg => ({
              width: width(svg), lines: all(svg, 'polyline').map(p => ({ points: p.points.length, width: p.getBBox().width })) }))),
            confusion: all(d, '.row.confusion').map(row => all(row, 'svg').map(svg => ({
              width: width(svg), cells: all(svg, 'rect').map(r => Number(r.nextElementSibling.textContent)) }))),
            strips: all(d, '.row.strips').map(row => all(row, 'img').map(img => ({
              complete: img.complete, width: img.naturalWidth, height: img.naturalHeight, shownWidth: width(img),
              colours: colours(img) }))),
          };
        }
        window.addEventListener('load', () => {
          let out;
          try { out = [...document.querySelectorAll('iframe')].map(f => inspect(f.contentDocument)); }
          catch (e) { out = String(e); }
          document.getElementById('result').textContent = JSON.stringify(out);
        });
        """

    /// Opens `pages` in frames of one headless chromium whose proxy is a `ProxyTrap`, and returns
    /// what the inspector read from each and the requests that reached the trap.
    func render(_ pages: [URL], in work: URL, browser: String) async throws -> (frames: [Frame], requests: [String]) {
        let frames = pages.map { "<iframe src='\($0.absoluteString)' width='1300' height='800'></iframe>" }.joined()
        let harness = work.appendingPathComponent("inspect.html")
        try Data(
            "<!doctype html><html><body>\(frames)<pre id='result'>not run</pre><script>\(Self.inspector)</script></body></html>"
                .utf8
        ).write(to: harness)

        let trap = try ProxyTrap()
        async let requests = onOwnThread { trap.serve() }
        let log = work.appendingPathComponent("chromium.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: browser)
        // NOTE: `<-loopback>` takes loopback off chromium's implicit proxy bypass list, so a load
        // from localhost reaches the trap too. --allow-file-access-from-files lets the test page's
        // script read the framed file:// reports (otherwise each file is an origin of its own).
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
            "--user-data-dir=\(work.appendingPathComponent("profile").path)",
            "--proxy-server=127.0.0.1:\(trap.port)", "--proxy-bypass-list=<-loopback>",
            "--virtual-time-budget=5000", "--dump-dom", harness.absoluteString,
        ]
        let dom = Pipe()
        process.standardOutput = dom
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
        let output = String(decoding: await exited(process, reading: dom), as: UTF8.self)
        watchdog.cancel()
        trap.stop()
        let reached = await requests

        let errors = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        let start = try #require(
            output.range(of: "<pre id=\"result\">"),
            "chromium printed no inspected page (status \(process.terminationStatus)): \(errors.suffix(2000))")
        let end = try #require(output.range(of: "</pre>", range: start.upperBound..<output.endIndex))
        let json = String(output[start.upperBound..<end.lowerBound])
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
        do {
            return (try JSONDecoder().decode([Frame].self, from: Data(json.utf8)), reached)
        } catch {
            Issue.record("the inspector's result is not the frames' contents: \(json.prefix(2000))")
            throw error
        }
    }
}

/// chromium-headless-shell on PATH (Debian installs it in /usr/bin); nil when missing.
func headlessChromium() -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/chromium-headless-shell" }
        .first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Width and height from a base64 PNG's IHDR chunk.
func pngSize(_ base64: String) -> (width: Int, height: Int)? {
    guard let png = Data(base64Encoded: base64), png.count >= 24 else { return nil }
    let be = { (at: Int) in png[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
    return (be(16), be(20))
}

/// A TCP listener on 127.0.0.1 to point a browser's proxy at: every connection that reaches it is
/// a load from outside the page. `serve` accepts on the caller's thread until `stop`, keeping
/// each request's first line (`GET http://host/x.png HTTP/1.1`, `CONNECT host:443 HTTP/1.1`)
/// and closing the connection unanswered.
final class ProxyTrap: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var stopped = false

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 16) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard listener >= 0, bound else {
            close(listener)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        self.listener = listener
        port = UInt16(bigEndian: address.sin_port)
    }

    func stop() { lock.withLock { stopped = true } }

    /// Accepts until `stop` has been called and no connection is waiting (one made before
    /// `stop` is still counted); closes the listener and returns the requests' first lines.
    func serve() -> [String] {
        var requests: [String] = []
        while true {
            var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 100) > 0 else {
                if lock.withLock({ stopped }) { break }
                continue
            }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 1024)
            let n = recv(connection, &buffer, buffer.count, 0)
            let text = n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : ""
            requests.append(text.isEmpty ? "(a connection that sent nothing)" : String(text.prefix { !$0.isNewline }))
            close(connection)
        }
        close(listener)
        return requests
    }
}
