import PorticoAllocation
import Yams

/// Decoding of the `portico.dev/v1alpha1` network boot resources.
extension ResourceDecoder {
    func decodeNetboot(_ kind: String, _ object: Object, _ metadata: ObjectMeta, into manifests: inout Manifests) {
        switch kind {
        case "BootProfile": manifests.bootProfiles.append(decodeBootProfile(object, metadata))
        case "MachineGroup": manifests.machineGroups.append(decodeMachineGroup(object, metadata))
        case "Machine": manifests.machines.append(decodeMachine(object, metadata))
        case "NetbootSettings": manifests.netbootSettings.append(decodeNetbootSettings(object, metadata))
        default: break
        }
    }

    // MARK: - BootProfile

    func decodeBootProfile(_ object: Object, _ metadata: ObjectMeta) -> BootProfileResource {
        var profile = BootProfileResource(metadata: metadata)
        guard let spec = object.object("spec", ["kernel", "initrd", "args", "templates"]) else {
            object.missing("spec")
            return profile
        }
        if let field = spec["kernel"] {
            profile.kernel = templateSource(field)
        } else {
            spec.missing("kernel", "the kernel's path under the assets directory, or its URL")
        }
        if let field = spec["initrd"], case .scalar = field.node {
            profile.initrds = templateSource(field).map { [$0] } ?? []
        } else {
            profile.initrds = spec.list("initrd").compactMap(templateSource)
        }
        profile.arguments = spec.list("args").compactMap(templateSource)
        if let templates = spec.mapping("templates") {
            for (name, field) in templates.fields.sorted(by: { $0.key < $1.key }) {
                guard Self.isTemplateName(name) else {
                    field.error(
                        "\"\(name)\" is not a template name: use letters, digits, '.', '_' and '-' (it is served at /netboot/<mac>/\(name))"
                    )
                    continue
                }
                if let source = templateSource(field) { profile.templates[name] = source }
            }
        }
        return profile
    }

    static func isTemplateName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 128 && name != "." && name != ".." && name != "installed"
            && name != "boot.ipxe"
            && name.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                    || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
            }
    }

    /// A string field as a template, remembering where its text starts in the file.
    func templateSource(_ field: Field) -> TemplateSource? {
        guard case .scalar(let scalar) = field.node else {
            field.error("expected a template (a string), found \(field.kindDescription)")
            return nil
        }
        // Templates are text whatever they look like: an unquoted number is its digits.
        let text = Field.plainType(scalar) == .null && scalar.style == .plain ? "" : scalar.string
        let location = field.location
        var blockStart: (line: Int, indentation: Int)?
        if scalar.style == .literal || scalar.style == .folded {
            let line = location.line + 1
            blockStart = (line, field.sink.indentation(ofLine: line - field.sink.lineOffset))
        }
        return TemplateSource(text: text, path: field.path, location: location, blockStart: blockStart)
    }

    // MARK: - MachineGroup

    func decodeMachineGroup(_ object: Object, _ metadata: ObjectMeta) -> MachineGroupResource {
        var group = MachineGroupResource(metadata: metadata)
        guard let spec = object.object("spec", ["profile", "selector", "variables"]) else {
            object.missing("spec")
            return group
        }
        group.profile = spec.string("profile", required: true) ?? ""
        group.profileLocation = spec.location("profile")
        if let selectorField = spec["selector"] {
            group.selectorLocation = selectorField.location
            if let selector = selectorField.object(["mac", "uuid", "hostname", "labels"]) {
                group.selector = decodeMachineSelector(selector)
            }
        }
        group.variables = decodeVariables(spec["variables"])
        return group
    }

    private func decodeMachineSelector(_ selector: Object) -> MachineSelectorSpec {
        var result = MachineSelectorSpec()
        if let field = selector["mac"], let text = field.string() {
            if let problem = Self.macProblem(text) { field.error(problem) } else { result.mac = text.lowercased() }
        }
        if let field = selector["uuid"], let text = field.string() {
            if let problem = Self.uuidProblem(text) { field.error(problem) } else { result.uuid = text.lowercased() }
        }
        if let field = selector["hostname"], let text = field.string() {
            if let problem = KubernetesNames.dns1123SubdomainProblem(text.lowercased()) {
                field.error("\"\(text)\" \(problem)")
            } else {
                result.hostname = text
            }
        }
        result.labels = selector.stringMap("labels")
        return result
    }

    // MARK: - Machine

    func decodeMachine(_ object: Object, _ metadata: ObjectMeta) -> MachineResource {
        var machine = MachineResource(metadata: metadata)
        guard let spec = object.object("spec", ["mac", "uuid", "hostname", "variables", "boot", "reinstall"]) else {
            object.missing("spec")
            return machine
        }
        machine.macLocation = spec.location("mac")
        if let text = spec.string("mac", required: true) {
            if let problem = Self.macProblem(text) {
                spec["mac"]?.error(problem)
            } else {
                machine.mac = text.lowercased()
            }
        }
        if let field = spec["uuid"], let text = field.string() {
            if let problem = Self.uuidProblem(text) { field.error(problem) } else { machine.uuid = text.lowercased() }
        }
        if let field = spec["hostname"], let text = field.string() {
            if let problem = KubernetesNames.dns1123SubdomainProblem(text.lowercased()) {
                field.error("\"\(text)\" \(problem)")
            } else {
                machine.hostname = text
            }
        }
        if let field = spec["boot"], let text = field.string() {
            if let boot = MachineResource.Boot(rawValue: text) {
                machine.boot = boot
            } else {
                field.error("\"\(text)\" is not a boot choice; use install (until the install completes) or local")
            }
        }
        if let field = spec["reinstall"], case .scalar(let scalar) = field.node {
            machine.reinstall = scalar.string
        }
        machine.variables = decodeVariables(spec["variables"])
        return machine
    }

    // MARK: - variables

    func decodeVariables(_ field: Field?) -> [String: VariableValue] {
        guard let field, let object = field.mapping() else { return [:] }
        var result: [String: VariableValue] = [:]
        for (name, child) in object.fields.sorted(by: { $0.key < $1.key }) {
            guard Self.isVariableName(name) else {
                child.error(
                    "\"\(name)\" is not a variable name: start with a letter, then letters, digits, '_' or '-' (templates write {{\(name)}})"
                )
                continue
            }
            if let value = variableValue(child) { result[name] = value }
        }
        return result
    }

    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.properties.isAlphabetic, first.isASCII else { return false }
        return name.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
        }
    }

    private func variableValue(_ field: Field) -> VariableValue? {
        switch field.node {
        case .scalar(let scalar):
            switch Field.plainType(scalar) {
            case .null:
                field.error("a variable cannot be null; give it a value (\"\" for empty text)")
                return nil
            case .bool:
                return .bool(field.bool() ?? false)
            case .int, .float, .string:
                return .string(scalar.string)
            }
        case .sequence:
            return .list(field.list().compactMap(variableValue))
        case .mapping:
            guard let object = field.mapping() else { return nil }
            var values: [String: VariableValue] = [:]
            for (key, child) in object.fields {
                if let value = variableValue(child) { values[key] = value }
            }
            return .map(values)
        case .alias:
            field.error("aliases are not supported in variables")
            return nil
        }
    }

    // MARK: - NetbootSettings

    func decodeNetbootSettings(_ object: Object, _ metadata: ObjectMeta) -> NetbootSettingsResource {
        var settings = NetbootSettingsResource(metadata: metadata)
        guard
            let spec = object.object(
                "spec",
                [
                    "serverAddress", "interface", "dhcp", "tftp", "http", "assetsDirectory", "bootLoaderDirectories",
                    "firmwareIPXEAsPlainPXE",
                ]
            )
        else {
            object.missing("spec")
            return settings
        }
        settings.serverAddressLocation = spec.location("serverAddress")
        if let text = spec.string("serverAddress", required: true) {
            if let address = IPAddress(text), address.family == .ipv4 {
                settings.serverAddress = text
            } else {
                spec["serverAddress"]?.error(
                    "\"\(text)\" is not an IPv4 address; give the address machines reach Portico at, such as 192.0.2.10"
                )
            }
        }
        if let field = spec["interface"], let text = field.string() {
            if text.isEmpty || text.utf8.count > 15 || text.contains("/") || text.contains(" ") {
                field.error("\"\(text)\" is not a network interface name (at most 15 characters, no '/' or space)")
            } else {
                settings.interface = text
            }
        }
        if let dhcp = spec.object("dhcp", ["address", "port", "bootServerPort", "clientPort"]) {
            settings.dhcp.address = listenAddress(dhcp) ?? settings.dhcp.address
            settings.dhcp.port = port(dhcp, "port") ?? settings.dhcp.port
            settings.bootServerPort = port(dhcp, "bootServerPort") ?? settings.bootServerPort
            settings.dhcpClientPort = port(dhcp, "clientPort", allowZero: false) ?? settings.dhcpClientPort
        }
        if let tftp = spec.object("tftp", ["address", "port", "maximumBlockSize", "maximumWindowSize"]) {
            settings.tftp.address = listenAddress(tftp) ?? settings.tftp.address
            settings.tftp.port = port(tftp, "port") ?? settings.tftp.port
            if let value = tftp.int("maximumBlockSize") {
                if (8...65464).contains(value) {
                    settings.maximumBlockSize = value
                } else {
                    tftp["maximumBlockSize"]?.error(
                        "\(value) is outside 8...65464 (RFC 2348); 1468 suits a 1500-byte MTU"
                    )
                }
            }
            if let value = tftp.int("maximumWindowSize") {
                if (1...65535).contains(value) {
                    settings.maximumWindowSize = value
                } else {
                    tftp["maximumWindowSize"]?.error("\(value) is outside 1...65535 (RFC 7440)")
                }
            }
        }
        if let http = spec.object("http", ["address", "port", "advertisedPort"]) {
            settings.http.address = listenAddress(http) ?? settings.http.address
            settings.http.port = port(http, "port") ?? settings.http.port
            settings.advertisedHTTPPort = port(http, "advertisedPort", allowZero: false)
        }
        if let field = spec["assetsDirectory"], let text = field.string() {
            if text.hasPrefix("/") {
                settings.assetsDirectory = text
            } else {
                field.error("\"\(text)\" must be an absolute path")
            }
        }
        if spec["bootLoaderDirectories"] != nil {
            var directories: [String] = []
            for field in spec.list("bootLoaderDirectories") {
                guard let text = field.string() else { continue }
                if text.hasPrefix("/") {
                    directories.append(text)
                } else {
                    field.error("\"\(text)\" must be an absolute path")
                }
            }
            settings.bootLoaderDirectories = directories
        }
        settings.firmwareIPXEAsPlainPXE = spec.bool("firmwareIPXEAsPlainPXE") ?? false
        return settings
    }

    private func listenAddress(_ object: Object) -> String? {
        guard let field = object["address"], let text = field.string() else { return nil }
        guard let address = IPAddress(text), address.family == .ipv4 else {
            field.error("\"\(text)\" is not an IPv4 address to listen on (0.0.0.0 for every interface)")
            return nil
        }
        return text
    }

    private func port(_ object: Object, _ key: String, allowZero: Bool = true) -> Int? {
        guard let field = object[key], let value = field.int() else { return nil }
        guard (allowZero ? 0 : 1)...65535 ~= value else {
            field.error("\(value) is not a port: use \(allowZero ? "0 (any free port) or " : "")1...65535")
            return nil
        }
        return value
    }

    // MARK: - identifiers

    static func macProblem(_ text: String) -> String? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let dashed = text.split(separator: "-", omittingEmptySubsequences: false)
        let groups = parts.count == 6 ? parts : dashed
        guard groups.count == 6, groups.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }) else {
            return "\"\(text)\" is not a MAC address such as 52:54:00:12:34:56"
        }
        return nil
    }

    static func uuidProblem(_ text: String) -> String? {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12], groups.allSatisfy({ $0.allSatisfy(\.isHexDigit) }) else {
            return "\"\(text)\" is not a UUID such as 4c4c4544-0042-3510-8052-b2c04f4b4e31"
        }
        return nil
    }
}
