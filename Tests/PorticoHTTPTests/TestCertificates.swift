// Test certificates: self-signed P-256, valid for 100 years, generated for these tests only.

enum TestCertificates {
    static let exactCertificate = """
        -----BEGIN CERTIFICATE-----
        MIIBoTCCAUegAwIBAgIUcIm6dhlUtzItxSNuIlcDwPU11yswCgYIKoZIzj0EAwIw
        GDEWMBQGA1UEAwwNYS5leGFtcGxlLmNvbTAgFw0yNjExMjYyMDE3NDFaGA8yMTI2
        MTEwMjIwMTc0MVowGDEWMBQGA1UEAwwNYS5leGFtcGxlLmNvbTBZMBMGByqGSM49
        AgEGCCqGSM49AwEHA0IABDMpyhhMBf5XLPvHrNRLxmmel36/o4sbDDIXvwqITPOR
        29/C4PqTgTkF4uFK0BHC6rZS663UF9edJc+ddj+oDtyjbTBrMB0GA1UdDgQWBBS9
        U/wivybmAjLTceeIiuGUCTfnODAfBgNVHSMEGDAWgBS9U/wivybmAjLTceeIiuGU
        CTfnODAPBgNVHRMBAf8EBTADAQH/MBgGA1UdEQQRMA+CDWEuZXhhbXBsZS5jb20w
        CgYIKoZIzj0EAwIDSAAwRQIgQ3h5VnyHndNdAgTR0DldIN4lm+D2duluoblplyAB
        16ECIQDyycI1CJ0X05lswj251pV17qkgs8wBxzGXkashJj89rw==
        -----END CERTIFICATE-----
        """

    static let exactKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg4LeVllYMavxLRwXW
        1ivtYukF4XysondgwwUQbW9x+fKhRANCAAQzKcoYTAX+Vyz7x6zUS8Zpnpd+v6OL
        GwwyF78KiEzzkdvfwuD6k4E5BeLhStARwuq2Uuut1BfXnSXPnXY/qA7c
        -----END PRIVATE KEY-----
        """

    static let wildCertificate = """
        -----BEGIN CERTIFICATE-----
        MIIBsDCCAVagAwIBAgIUPBuc2Hak9j38PfebARWh8ZWl5i4wCgYIKoZIzj0EAwIw
        HTEbMBkGA1UEAwwSKi53aWxkLmV4YW1wbGUuY29tMCAXDTI2MTEyNjIwMTc0MVoY
        DzIxMjYxMTAyMjAxNzQxWjAdMRswGQYDVQQDDBIqLndpbGQuZXhhbXBsZS5jb20w
        WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATXgs/8IB92C1Gt/w4SbGn83KaVxwAW
        HnLQI09f4Qrb6uCbz7aw6EekTdH/S/zSHx5xz5th+hThB4rj7/O0H5Kfo3IwcDAd
        BgNVHQ4EFgQUddIpxmYH8vlWmQe3byNc2xCPLagwHwYDVR0jBBgwFoAUddIpxmYH
        8vlWmQe3byNc2xCPLagwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHREEFjAUghIqLndp
        bGQuZXhhbXBsZS5jb20wCgYIKoZIzj0EAwIDSAAwRQIhALYW4JFU8CGKEH+NioEa
        5IfKDdowiRGi84MbZlFIT2aGAiAdZKaQTiWrbyORFh5hcj9aueq33qvauw1Bi6m1
        rPw3VQ==
        -----END CERTIFICATE-----
        """

    static let wildKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgoMR7YX15sC0crdfz
        jVVwt4HaT6j3wsUu3o0GsIQebrehRANCAATXgs/8IB92C1Gt/w4SbGn83KaVxwAW
        HnLQI09f4Qrb6uCbz7aw6EekTdH/S/zSHx5xz5th+hThB4rj7/O0H5Kf
        -----END PRIVATE KEY-----
        """

    static let defaultCertificate = """
        -----BEGIN CERTIFICATE-----
        MIIBoTCCAUegAwIBAgIUK8de1rjZ+/zFx2XhL2YlB8XoC0UwCgYIKoZIzj0EAwIw
        GDEWMBQGA1UEAwwNZGVmYXVsdC5sb2NhbDAgFw0yNjExMjYyMDE3NDFaGA8yMTI2
        MTEwMjIwMTc0MVowGDEWMBQGA1UEAwwNZGVmYXVsdC5sb2NhbDBZMBMGByqGSM49
        AgEGCCqGSM49AwEHA0IABMj6QORLIR/KIA9uE+YmsDIuW4ufAV9thzfnEbuAAaV3
        Hvf48bdynsNYOdKSqcfiBb/TiVs5gWlUWg5kziMiIsqjbTBrMB0GA1UdDgQWBBSi
        Qu2HlcuovPXAuX6+NlLEYznAMTAfBgNVHSMEGDAWgBSiQu2HlcuovPXAuX6+NlLE
        YznAMTAPBgNVHRMBAf8EBTADAQH/MBgGA1UdEQQRMA+CDWRlZmF1bHQubG9jYWww
        CgYIKoZIzj0EAwIDSAAwRQIgNKziYr4IqoYs+MJwhnGylLJTHXt2R7fJuOc2g7VB
        BjECIQDfsGwgBGEhacJekY7Mxlht54EdyW1cV86i5puYaSaj4Q==
        -----END CERTIFICATE-----
        """

    static let defaultKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0HdCoie1zaIMWTsu
        FGPnlxqGy5nHUK/65wvat3Azp1mhRANCAATI+kDkSyEfyiAPbhPmJrAyLluLnwFf
        bYc35xG7gAGldx73+PG3cp7DWDnSkqnH4gW/04lbOYFpVFoOZM4jIiLK
        -----END PRIVATE KEY-----
        """
}
