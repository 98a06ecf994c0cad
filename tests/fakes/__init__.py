"""Local fakes of cloud control planes (HTTPS, trustme certificates) and moto helpers, for tests."""
