//! Properties of request reading: decoding and routing agree with a plain model of the
//! registry's router, and canonical paths read back as themselves.

mod properties;
