//! Read a request to the OCI distribution API exactly as the registry behind the gateway reads
//! it.
//!
//! A limit that a client can dodge by spelling a request differently is no limit. The CNCF
//! distribution registry (and Harbor's registry, which is distribution) routes on the
//! *percent-decoded* path with gorilla/mux, redirects paths that are not clean, decides between
//! a tag and a digest with go-digest, and reads query parameters with Go's `net/url`. This crate
//! does the same, once, before any check runs, and turns a request line into one typed
//! [`ApiRequest`]:
//!
//! * [`decode_path`]: `%XX` escapes decoded as Go's `url.PathUnescape` does (`%2F` is a `/`, an
//!   invalid escape is an error), so `project-1%2Fapp` and `%70roject-1/app` are
//!   `project-1/app`;
//! * [`ApiRequest::parse`]: the route (manifest `PUT`, manifest `DELETE`, upload start with
//!   its cross-repository mount, upload chunk, other writes, reads), with the repository name
//!   validated
//!   ([`limits_core::RepositoryName`]), the [`Reference`] told apart as the registry does, and,
//!   for writes, the canonical path to forward so that the registry sees exactly what was
//!   checked;
//! * [`Reference`]: a tag or a digest, by the registry's own rule (a reference that looks like a
//!   digest but is not a valid one is a *tag* for distribution);
//! * [`go_query_value`], [`go_query_values`]: the first value, or every value, of a query
//!   parameter, as Go's `url.ParseQuery` reads them;
//! * [`upload`]: the bytes an upload session holds, from the registry's `Range` answers;
//! * [`Notification`]: the body of a registry notification (`POST` of the events envelope
//!   distribution sends to its notification endpoints), read into the events that change what
//!   the registry holds;
//! * [`RequestHead`]: the whole head read once, the route above plus every header fact the
//!   gateway's checks read (see [Headers](#headers)).
//!
//! ```
//! use registry_api::{ApiRequest, Reference, Route};
//!
//! let request = ApiRequest::parse("PUT", "/v2/project-1%2Fapp/manifests/v%31", None)?;
//! let Route::ManifestPut { name, reference } = &request.route else { panic!("a manifest push") };
//! assert_eq!(name.as_str(), "project-1/app");
//! assert_eq!(reference, &Reference::Tag("v1".to_owned()));
//! // The registry is sent the path that was checked.
//! assert_eq!(request.forward_path.as_deref(), Some("/v2/project-1/app/manifests/v1"));
//!
//! // Writes to paths the registry would not read as they are written are refused.
//! assert!(ApiRequest::parse("PUT", "/v2/project-1/./app/manifests/v1", None).is_err());
//! assert!(ApiRequest::parse("PUT", "/v2/Project-1/app/manifests/v1", None).is_err());
//! # Ok::<(), registry_api::RequestError>(())
//! ```
//!
//! # Reads and writes
//!
//! Writes (`POST`, `PUT`, `PATCH`, `DELETE`) are what limits apply to: their paths must be clean
//! (no empty, `.` or `..` segment, which distribution answers with a redirect), use only the
//! characters names, references and upload ids are made of once decoded, and, on the routes the
//! gateway checks, name a repository in the OCI grammar. They are forwarded in their canonical,
//! decoded form. Reads (`GET`, `HEAD`, `OPTIONS`) are classified the same way but forwarded as
//! received. Any other method is refused: distribution answers none.
//!
//! # Headers
//!
//! [`RequestHead::parse`] takes the header list besides the method, path and query, and reads,
//! once, what the checks need, so that no check reads a header its own way:
//!
//! * the `Content-Type` ([`ContentType`]: absent, exactly one, or [`ContentType::Ambiguous`]
//!   when several could make the registry read the body as another kind), and whether it names
//!   a form body, whose parameters Go reads for the registry as if they were in the query;
//! * the `Content-Length` (several headers or a list count as one length only when they agree)
//!   and the `Content-Range` a chunk announces, or a [`HeaderError`];
//! * whether an `Authorization` header is present;
//! * the checked header a `Connection` header names ([`CHECKED_HEADERS`]): a proxy removes it
//!   before forwarding, so the registry would not see what was checked;
//! * the `?tag=` values of a manifest push (OCI distribution 1.1), as Go reads the query, and
//!   with its reference the tags the push creates ([`RequestHead::requested_tags`]).
//!
//! ```
//! use registry_api::{ContentType, RequestHead};
//!
//! let head = RequestHead::parse(
//!     "POST",
//!     "/v2/project-1/app/blobs/uploads/",
//!     None,
//!     [("Content-Type", "multipart/form-data; boundary=x"), ("Connection", "Authorization")],
//! )?;
//! assert!(head.form);
//! assert_eq!(head.connection_names, Some("authorization"));
//! assert!(matches!(head.content_type, ContentType::One(_)));
//! # Ok::<(), registry_api::RequestError>(())
//! ```
//!
//! # No I/O
//!
//! This crate does no I/O: a method, a path, a query and header bytes go in, a value comes out.
//! It depends on no HTTP stack: headers are (name, value) byte pairs, which an `http::HeaderMap`
//! or `httparse`'s headers give as they are.

mod head;
mod notification;
mod path;
mod query;
mod reference;
mod route;
pub mod upload;

pub use head::{CHECKED_HEADERS, ContentType, HeaderError, RequestHead};
pub use notification::{
    EVENTS_MEDIA_TYPE_V1, EVENTS_MEDIA_TYPE_V2, Event, EventKind, JsonError, Notification,
    NotificationError, is_notification_content_type,
};
pub use path::{PathError, decode_path, is_clean};
pub use query::{go_query_value, go_query_values};
pub use reference::{Reference, ReferenceError};
pub use route::{ApiRequest, Method, Mount, RequestError, Route};
