// Client certificate authorities and clients for the auth-tls tests: P-256, valid for 100
// years, generated for these tests only (client N is signed by CA N).

enum ClientCertificates {
    static let ca1 = """
        -----BEGIN CERTIFICATE-----
        MIIBrTCCAVOgAwIBAgIUdIzkanR3NsLLyZCiurEbCRiMaFMwCgYIKoZIzj0EAwIw
        IzEhMB8GA1UEAwwYUG9ydGljbyB0ZXN0IGNsaWVudCBDQSAxMCAXDTI2MTEyNjIz
        MDkxM1oYDzIxMjYxMTAyMjMwOTEzWjAjMSEwHwYDVQQDDBhQb3J0aWNvIHRlc3Qg
        Y2xpZW50IENBIDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARvI3rF1i63JK9l
        8LS5Ag6FkiorGAGq7jCMgj50jnnGoNYZL2cSvjArD6+5LgrbsqiCJcxSn2IcfVQs
        9Dep8kh0o2MwYTAdBgNVHQ4EFgQUYmgF8lm0y8bY9Q+fC4jnY5ESk8cwHwYDVR0j
        BBgwFoAUYmgF8lm0y8bY9Q+fC4jnY5ESk8cwDwYDVR0TAQH/BAUwAwEB/zAOBgNV
        HQ8BAf8EBAMCAQYwCgYIKoZIzj0EAwIDSAAwRQIgBvKEebP72muOXQ0bK8vHw7f7
        6CRftjyxinDTm3XfoiQCIQD5HrU42tm+/eI/3R2JQaANo6zBOcxuroqzVOGFtn9w
        MA==
        -----END CERTIFICATE-----
        """

    static let client1 = """
        -----BEGIN CERTIFICATE-----
        MIIBqzCCAVKgAwIBAgIUdeOu7D1s8y1HR148uAxRM5GW7hIwCgYIKoZIzj0EAwIw
        IzEhMB8GA1UEAwwYUG9ydGljbyB0ZXN0IGNsaWVudCBDQSAxMCAXDTI2MTEyNjIz
        MDkxM1oYDzIxMjYxMTAyMjMwOTEzWjATMREwDwYDVQQDDAhjbGllbnQgMTBZMBMG
        ByqGSM49AgEGCCqGSM49AwEHA0IABDOfd2/qcvJOvFX6vE4IVolGHv0k3XpO+yX5
        AXNm09fT44qWlrEypgh4V1BI/KEuWUSndJSGyL6EXCLC3/kQurajcjBwMAkGA1Ud
        EwQCMAAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwDgYDVR0PAQH/BAQDAgeAMB0GA1Ud
        DgQWBBT0v1elSbv9ixrJcXcLtw7j12OgnjAfBgNVHSMEGDAWgBRiaAXyWbTLxtj1
        D58LiOdjkRKTxzAKBggqhkjOPQQDAgNHADBEAiB7fMerybIHqH7FMTg7GSJlWCdh
        aPgLipiO4+Pv1+tbxwIgV8+0WMMbBeZw8O7NdNt5LB8r0NOjyixksBf2InLQ+vA=
        -----END CERTIFICATE-----
        """

    static let client1Key = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfy65H1/vyzGxwc4G
        zOwCNffs9z20fYNVzODX4uqYw42hRANCAAQzn3dv6nLyTrxV+rxOCFaJRh79JN16
        Tvsl+QFzZtPX0+OKlpaxMqYIeFdQSPyhLllEp3SUhsi+hFwiwt/5ELq2
        -----END PRIVATE KEY-----
        """

    static let ca2 = """
        -----BEGIN CERTIFICATE-----
        MIIBrjCCAVOgAwIBAgIUOSgexBzqqJFNjx8SWfk9HFVrnKAwCgYIKoZIzj0EAwIw
        IzEhMB8GA1UEAwwYUG9ydGljbyB0ZXN0IGNsaWVudCBDQSAyMCAXDTI2MTEyNjIz
        MDkxM1oYDzIxMjYxMTAyMjMwOTEzWjAjMSEwHwYDVQQDDBhQb3J0aWNvIHRlc3Qg
        Y2xpZW50IENBIDIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASCgz3fLeFWFQxJ
        HOeoNag5g69UnT51V6f3EK9J5q1OutbWFX2LqXMyV1gR5oytr6d4d2mZwSWgUvlD
        oOLWjPDdo2MwYTAdBgNVHQ4EFgQUqYUVi5rQKmbhlC7mr3L/vNpjsygwHwYDVR0j
        BBgwFoAUqYUVi5rQKmbhlC7mr3L/vNpjsygwDwYDVR0TAQH/BAUwAwEB/zAOBgNV
        HQ8BAf8EBAMCAQYwCgYIKoZIzj0EAwIDSQAwRgIhAIvwHJMIqyLVfrXbFKsFAxnb
        v28uSOPqJrHZ+druJxr8AiEA3nehryjQuk3YxJFk4cLzuQkeN1bszhohlfkjOylv
        h/g=
        -----END CERTIFICATE-----
        """

    static let client2 = """
        -----BEGIN CERTIFICATE-----
        MIIBrTCCAVKgAwIBAgIUPa+NiLYH492CIWIUV+6uLeNrxt4wCgYIKoZIzj0EAwIw
        IzEhMB8GA1UEAwwYUG9ydGljbyB0ZXN0IGNsaWVudCBDQSAyMCAXDTI2MTEyNjIz
        MDkxM1oYDzIxMjYxMTAyMjMwOTEzWjATMREwDwYDVQQDDAhjbGllbnQgMjBZMBMG
        ByqGSM49AgEGCCqGSM49AwEHA0IABK2dCNbsxkpE7bEB64vkdekxtj35YyuzRIPs
        ebsoYPm10FtSplEkzvT6n6hUqQc9yu9WLdNepWgIdFzE2MuFAUyjcjBwMAkGA1Ud
        EwQCMAAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwDgYDVR0PAQH/BAQDAgeAMB0GA1Ud
        DgQWBBSiBaFg/tAFy6ULKing29n+TYvnojAfBgNVHSMEGDAWgBSphRWLmtAqZuGU
        Luavcv+82mOzKDAKBggqhkjOPQQDAgNJADBGAiEAvWAhYjk6hzckU+JDbwoTQ6Mu
        +/50rc3T8YHAI/IjmC4CIQDxAMclu4kpMDHF4qmM/m3+BvbafFnZJ2Jy/Q1TmWRv
        QQ==
        -----END CERTIFICATE-----
        """

    static let client2Key = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3yBNhVRd1M4AZtlL
        ssSSuQn8CYTZ0BGoDqSiH6Mi0cyhRANCAAStnQjW7MZKRO2xAeuL5HXpMbY9+WMr
        s0SD7Hm7KGD5tdBbUqZRJM70+p+oVKkHPcrvVi3TXqVoCHRcxNjLhQFM
        -----END PRIVATE KEY-----
        """
}
