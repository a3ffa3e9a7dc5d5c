/// Test certificates made with openssl for these tests only (ECDSA P-256, self-signed,
/// valid ten years from 2026-11-26): a wildcard for *.example.test and example.test, its
/// key, and an unrelated key.
enum Fixtures {
    static let wildcardCertificate = """
        -----BEGIN CERTIFICATE-----
        MIIBsDCCAVagAwIBAgIUN+Hc6WacIf8bAaX3ot7ZdXVQYO0wCgYIKoZIzj0EAwIw
        GTEXMBUGA1UEAwwOKi5leGFtcGxlLnRlc3QwHhcNMjYxMTI2MjAxNjEyWhcNMzYx
        MTIzMjAxNjEyWjAZMRcwFQYDVQQDDA4qLmV4YW1wbGUudGVzdDBZMBMGByqGSM49
        AgEGCCqGSM49AwEHA0IABB+gzpE1rGusZHyxsezrGzFOtgRlXTvyMQn6NGTQ5cyr
        wHiceoArF/zfyoN0xEPKsP2bsqjmnVSPqYyulLzR6sujfDB6MB0GA1UdDgQWBBRK
        Gs7cG4QiyRNev3wwAuEKyE4q9jAfBgNVHSMEGDAWgBRKGs7cG4QiyRNev3wwAuEK
        yE4q9jAPBgNVHRMBAf8EBTADAQH/MCcGA1UdEQQgMB6CDiouZXhhbXBsZS50ZXN0
        ggxleGFtcGxlLnRlc3QwCgYIKoZIzj0EAwIDSAAwRQIgMbP5Q0Yk4UVSZ7J61RFk
        TNC+BAjh2kYSuU2w2/VbW2sCIQCdAUMafegw9QzqKDUZFcJ0iWO65oIhirbfD5Pb
        MM2uVg==
        -----END CERTIFICATE-----
        """

    static let wildcardKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg604Xz5nBu8ysVpGQ
        Y1r+CkjoNPmV6yULEZLfj9vtc46hRANCAAQfoM6RNaxrrGR8sbHs6xsxTrYEZV07
        8jEJ+jRk0OXMq8B4nHqAKxf838qDdMRDyrD9m7Ko5p1Uj6mMrpS80erL
        -----END PRIVATE KEY-----
        """

    static let otherKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgA0R4QKCvK8woWv2y
        imSaPi9f4vDTtERFXBWz+ZB+03GhRANCAASzv95b2dL8t97eMwq2Wl1Hwlp3eatH
        OlFIhJWg57zNsLwTcxYifkYZzwhJbNBED+KMq4FrLpEaPSaelnFvoS1R
        -----END PRIVATE KEY-----
        """
}
