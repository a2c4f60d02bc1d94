//! The upload form: a multipart form posting to `POST /images`, which stays the monolith's
//! (the proxy routes it); this page only renders the form.

use axum::extract::State;
use axum::response::Html;

use super::Front;
use super::layout::page;

/// `GET /upload` — pick a PNG or JPEG and send it to `/images`.
pub(crate) async fn form(State(front): State<Front>) -> Html<String> {
    let body = "<h1>Upload a picture</h1>\n\
        <p>Send a PNG or JPEG (up to 20 MiB). The shop answers with the new image's id and URL.</p>\n\
        <form action=\"/images\" method=\"post\" enctype=\"multipart/form-data\">\n\
        <label>Picture <input type=\"file\" name=\"image\" accept=\"image/png,image/jpeg\" required></label>\n\
        <button type=\"submit\">Upload</button>\n</form>\n\
        <h2>Make a thumbnail</h2>\n\
        <form action=\"/misc/thumbnail\" method=\"get\">\n\
        <label>Image id <input type=\"text\" name=\"image\" value=\"img-1\"></label>\n\
        <label>Width <input type=\"number\" name=\"w\" value=\"128\" min=\"1\" max=\"1024\"></label>\n\
        <label>Height <input type=\"number\" name=\"h\" value=\"128\" min=\"1\" max=\"1024\"></label>\n\
        <button type=\"submit\">Show thumbnail</button>\n</form>\n";
    Html(page("Upload", body, Some(&front.clock().timestamp())))
}
