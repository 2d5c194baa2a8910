import Testing

@testable import BudJSON

@Suite("Secret keys and masking")
struct SecretKeysTests {
    static let marker = JSONValue.string(SecretKeys.redactionMarker)

    @Test(
        "keys ending in a secret word are secret, whatever their case and separators",
        arguments: [
            "password", "PASSWORD", "db_password", "db-password", "dbPassword", "hf_token", "HF_TOKEN", "accessToken", "access_token",
            "api_key", "apiKey", "APIKey", "x-api-key", "X-Api-Key", "openaiApiKey", "apikey", "Authorization", "authorization",
            "set-cookie", "Cookie", "X-Webhook-Secret", "client_secret", "clientSecret", "private_key", "sshPrivateKey", "pwd",
            "passwd", "dapr-api-token", "APP_API_TOKEN", "refresh_token", "aws_secret_access_key", "AWS_SESSION_TOKEN",
            "connection_string", "dbConnectionString", "credentials", "bearer", "hf2Token", "service.token", "user password",
        ])
    func secretKeys(key: String) {
        #expect(SecretKeys.builtIn.isSecret(key), "\(key) should be secret")
    }

    @Test(
        "keys whose last word is no secret word stay readable (benchmark params such as max_tokens survive)",
        arguments: [
            "max_tokens", "maxTokens", "token_count", "tokenCount", "secret_name", "secretName", "input_tokens", "output_tokens",
            "max_new_tokens", "tokenizer", "password_hint", "passwords", "key", "keys", "api", "auth", "model_id", "name",
            "secrets", "api_key_id", "", "_", "--",
        ])
    func readableKeys(key: String) {
        #expect(!SecretKeys.builtIn.isSecret(key), "\(key) should not be secret")
    }

    @Test("masking replaces exactly the secret values, through objects and arrays, and keeps null")
    func masking() throws {
        let value: JSONValue = [
            "password": "p", "nested": ["api_key": "k", "region": "eu"], "max_tokens": 5,
            "list": [["token": "t1", "count": 1], "plain", ["inner": [["Authorization": "Bearer x"]]]],
            "credentials": ["user": "u", "pass": "v"], "secret_name": "db-credentials", "token": nil,
        ]
        let masked = SecretKeys.builtIn.masked(value)
        let expected: JSONValue = [
            "password": Self.marker, "nested": ["api_key": Self.marker, "region": "eu"], "max_tokens": 5,
            "list": [["token": Self.marker, "count": 1], "plain", ["inner": [["Authorization": Self.marker]]]],
            "credentials": Self.marker, "secret_name": "db-credentials", "token": nil,
        ]
        #expect(masked == expected)
        #expect(masked.objectValue?.keys == value.objectValue?.keys, "member order kept")
        let object = try #require(value.objectValue)
        #expect(SecretKeys.builtIn.masked(object) == expected.objectValue)
    }

    @Test("a value with nothing to mask comes back unchanged")
    func nothingToMask() {
        let value: JSONValue = ["model_id": "m", "max_tokens": 5, "items": [1, "two", ["three": 3]]]
        #expect(SecretKeys.builtIn.masked(value) == value)
        #expect(SecretKeys.builtIn.masked(JSONValue.string("password")) == "password", "a string is a value, not a key")
    }

    @Test("nesting deeper than the parser allows is masked as a whole, without unbounded recursion")
    func deepNesting() {
        var deep: JSONValue = ["password": "p"]
        for _ in 0..<(JSONValue.maximumNestingDepth + 50) { deep = ["child": deep] }
        let masked = SecretKeys.builtIn.masked(deep)
        var cursor = masked
        var depth = 0
        while case .object(let object) = cursor, let child = object["child"] {
            cursor = child
            depth += 1
        }
        #expect(depth == JSONValue.maximumNestingDepth)
        #expect(cursor == Self.marker, "what is not inspected is not shown")
        var shallow: JSONValue = ["password": "p"]
        for _ in 0..<100 { shallow = [shallow] }
        #expect(!SecretKeys.builtIn.masked(shallow).serializedString().contains("\"p\""))
    }

    @Test("operators add keys as a comma-separated list; their words match like the built-in ones")
    func additionalKeys() throws {
        let keys = try SecretKeys(parsing: " ssn , pin-code,licenseKey")
        #expect(keys.isSecret("ssn") && keys.isSecret("customer_ssn") && keys.isSecret("PIN_CODE") && keys.isSecret("userPinCode"))
        #expect(keys.isSecret("license_key") && keys.isSecret("password"), "built-in entries stay")
        #expect(!keys.isSecret("ssn_count") && !keys.isSecret("code") && !keys.isSecret("max_tokens"))
        #expect(!SecretKeys.builtIn.isSecret("ssn"))
    }

    @Test(
        "a malformed list is refused with a reason",
        arguments: [
            ("ssn,,pin", "an entry is empty"), ("ssn,", "an entry is empty"), (" ", "an entry is empty"),
            ("ssn,pin code", "'pin code' may hold letters, digits"), ("a/b", "'a/b' may hold letters"), ("-_.", "has no letters or digits"),
            (String(repeating: "k", count: 129), "longer than 128"),
            (Array(repeating: "k", count: 257).joined(separator: ","), "more than 256 entries"),
        ])
    func malformedLists(list: String, reason: String) {
        #expect(throws: SecretKeysError.self) { try SecretKeys(parsing: list) }
        do {
            _ = try SecretKeys(parsing: list)
        } catch {
            #expect(error.message.contains(reason), "\(error.message)")
        }
    }

    @Test("values written back as shown keep their stored secrets; new values replace them")
    func restoringMasked() throws {
        let stored: JSONObject = ["password": "old", "nested": ["api_key": "k"], "list": [["token": "t"]], "region": "eu"]
        let shown = SecretKeys.builtIn.masked(stored)
        let writtenBack = SecretKeys.builtIn.restoringMasked(shown.merging(["region": "us"]), from: stored)
        #expect(writtenBack == stored.merging(["region": "us"]))
        let changed = SecretKeys.builtIn.restoringMasked(shown.merging(["password": "new"]), from: stored)
        #expect(changed["password"] == "new" && changed["nested"]?["api_key"] == "k")
        let unknown = SecretKeys.builtIn.restoringMasked(["password": Self.marker], from: [:])
        #expect(unknown["password"] == Self.marker, "nothing stored to restore")
        let notSecret = SecretKeys.builtIn.restoringMasked(["region": Self.marker], from: ["region": "eu"])
        #expect(notSecret["region"] == Self.marker, "only secret keys are restored")
    }

    @Test("secret text never shows in descriptions, string interpolation, dumps or enclosing values")
    func secretText() {
        struct Holder {
            let endpoint: String
            let token: SecretText?
        }
        let token = SecretText("tok-123")
        let holder = Holder(endpoint: "http://sidecar", token: token)
        var dumped = ""
        dump(holder, to: &dumped)
        for text in ["\(token)", String(describing: token), String(reflecting: token), "\(holder)", String(reflecting: holder), dumped] {
            #expect(!text.contains("tok-123"), "\(text)")
        }
        #expect("\(holder)".contains(SecretKeys.redactionMarker))
        #expect(token.revealed == "tok-123")
    }
}

@Suite("Secret key words")
struct SecretKeyWordsTests {
    @Test("the last word found without splitting is the last word of the split, for any key")
    func lastWordAgreesWithWords() {
        let alphabet = Array("aBz_-. 1ZéQk")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let length = Int.random(in: 0...12, using: &generator)
            let key = String((0..<length).map { _ in alphabet.randomElement(using: &generator) ?? "a" })
            #expect(SecretKeys.lastWord(of: key) == SecretKeys.words(of: key).last, "\(key.debugDescription)")
        }
    }
}
