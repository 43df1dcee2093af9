//! SASL mechanisms shared by SMTP AUTH and POP3 AUTH: decoding each step into a credential.
