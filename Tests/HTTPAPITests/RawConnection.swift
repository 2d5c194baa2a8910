import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A plain TCP connection to a loopback port, for what URLSession will not do: a request sent in
/// pieces, a connection left idle, hundreds of connections at once. Reads never block: a waiting
/// test sleeps between them, so it holds no thread of the pool the other tests share.
final class RawConnection {
    private var descriptor: Int32
    private var received: [UInt8] = []
    /// Whether the server closed the connection (or reset it).
    private(set) var isClosed = false

    init(port: Int) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ServerError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let error = errno
            Glibc.close(descriptor)
            throw ServerError("connect() to port \(port) failed: errno \(error)")
        }
        self.descriptor = descriptor
    }

    deinit {
        if descriptor >= 0 { Glibc.close(descriptor) }
    }

    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    /// What arrived so far, as text.
    var text: String { String(decoding: received, as: UTF8.self) }

    /// Sends `text`; false when the connection no longer takes it.
    @discardableResult
    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { return false }
            offset += sent
        }
        return true
    }

    /// Waits until `condition` holds for what arrived and whether the connection is closed;
    /// false after `timeout`.
    func wait(timeout: Duration, until condition: (_ text: String, _ closed: Bool) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            read()
            if condition(text, isClosed) { return true }
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits until the server closes the connection; false after `timeout`.
    func waitForClose(timeout: Duration) async -> Bool {
        await wait(timeout: timeout) { _, closed in closed }
    }

    /// Waits for one whole HTTP response (header, and a body of its `Content-Length`, or up to
    /// the connection's end); nil after `timeout`.
    func response(timeout: Duration) async -> (status: Int, head: String, body: String)? {
        guard await wait(timeout: timeout, until: { text, closed in closed || Self.parse(text) != nil }) else { return nil }
        return Self.parse(text) ?? Self.parse(text, closed: true)
    }

    private static func parse(_ text: String, closed: Bool = false) -> (status: Int, head: String, body: String)? {
        guard let end = text.range(of: "\r\n\r\n") else { return nil }
        let head = String(text[..<end.lowerBound])
        let body = String(text[end.upperBound...])
        let fields = head.split(separator: "\r\n")
        guard let status = fields.first?.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        let length = fields.first { $0.lowercased().hasPrefix("content-length:") }.flatMap {
            Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        }
        if let length {
            guard body.utf8.count >= length else { return nil }
        } else if !closed {
            return nil
        }
        return (status, head, body)
    }

    /// Takes what arrived, without waiting.
    private func read() {
        guard descriptor >= 0, !isClosed else { return }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                received += buffer[..<count]
                continue
            }
            if count < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return }
            isClosed = true
            return
        }
    }
}

/// A listening socket on a free loopback port, accepting nothing: the port is in use.
final class PortHolder {
    private let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ServerError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && listen(descriptor, 16) == 0 && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard bound else {
            Glibc.close(descriptor)
            throw ServerError("could not listen on a loopback port: errno \(errno)")
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        Glibc.close(descriptor)
    }
}

/// Raises this process's soft descriptor limit to the hard one (tests open hundreds of sockets).
func raiseDescriptorLimit() {
    var limits = rlimit()
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    guard getrlimit(resource, &limits) == 0, limits.rlim_cur < limits.rlim_max else { return }
    limits.rlim_cur = limits.rlim_max
    _ = setrlimit(resource, &limits)
}
