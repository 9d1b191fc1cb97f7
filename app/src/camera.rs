//! Scanning a QR code with the device camera, decoded in the page itself (no network service).

use leptos::prelude::*;

/// A "Scan with camera" button (shown once the page's code runs) that reads one QR code and hands it on.
#[component]
#[cfg_attr(not(feature = "hydrate"), allow(unused_variables))]
pub fn CameraScanner(on_code: Callback<String>) -> impl IntoView {
    let ready = RwSignal::new(false);
    let scanning = RwSignal::new(false);
    let message = RwSignal::new(None::<String>);
    let video = NodeRef::<leptos::html::Video>::new();
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    Effect::new(move |_| ready.set(true));

    let start = move |_| {
        if scanning.get_untracked() {
            scanning.set(false);
            return;
        }
        #[cfg(feature = "hydrate")]
        {
            let (Some(video), Some(canvas)) = (video.get_untracked(), canvas.get_untracked())
            else {
                return;
            };
            scanning.set(true);
            message.set(Some("Point the camera at the QR code.".into()));
            leptos::task::spawn_local(async move {
                match browser::read_qr(video, canvas, scanning).await {
                    Ok(Some(code)) => {
                        message.set(None);
                        on_code.run(code);
                    }
                    Ok(None) => message.set(None),
                    Err(err) => message.set(Some(err)),
                }
                scanning.set(false);
            });
        }
    };
    view! {
        <div class="camera" class:scanning=move || scanning.get()>
            // Hidden until the page's code runs: without it the camera cannot be read.
            <button type="button" class="camera-button" hidden=move || !ready.get() on:click=start>
                {move || if scanning.get() { "Stop camera" } else { "Scan with camera" }}
            </button>
            <video node_ref=video playsinline muted hidden=move || !scanning.get()></video>
            <canvas node_ref=canvas hidden></canvas>
            {move || message.get().map(|text| view! { <p class="camera-message">{text}</p> })}
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlVideoElement, MediaStream};

    /// Reads frames until a QR code decodes or `scanning` is switched off; the camera is released either way.
    pub async fn read_qr(
        video: HtmlVideoElement,
        canvas: HtmlCanvasElement,
        scanning: RwSignal<bool>,
    ) -> Result<Option<String>, String> {
        let stream = open_camera().await?;
        video.set_src_object(Some(&stream));
        let result = scan_frames(&video, &canvas, scanning).await;
        for track in stream.get_tracks().iter() {
            if let Ok(track) = track.dyn_into::<web_sys::MediaStreamTrack>() {
                track.stop();
            }
        }
        video.set_src_object(None);
        result
    }

    async fn open_camera() -> Result<MediaStream, String> {
        let unavailable = || "No camera is available on this device.".to_owned();
        let devices = window()
            .navigator()
            .media_devices()
            .map_err(|_| unavailable())?;
        let constraints = web_sys::MediaStreamConstraints::new();
        let video = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&video, &"facingMode".into(), &"environment".into());
        constraints.set_video(&video);
        let promise = devices
            .get_user_media_with_constraints(&constraints)
            .map_err(|_| unavailable())?;
        let stream = JsFuture::from(promise).await.map_err(|_| {
            "The camera could not be opened: allow camera access and try again.".to_owned()
        })?;
        stream.dyn_into::<MediaStream>().map_err(|_| unavailable())
    }

    async fn scan_frames(
        video: &HtmlVideoElement,
        canvas: &HtmlCanvasElement,
        scanning: RwSignal<bool>,
    ) -> Result<Option<String>, String> {
        let failed = |_| "The camera picture could not be read.".to_owned();
        let _ = video.play().map(JsFuture::from);
        let context: CanvasRenderingContext2d = canvas
            .get_context("2d")
            .map_err(failed)?
            .ok_or("The camera picture could not be read.")?
            .dyn_into()
            .map_err(|_| "The camera picture could not be read.".to_owned())?;
        while scanning.get_untracked() {
            next_frame().await;
            let (width, height) = (video.video_width(), video.video_height());
            if width == 0 || height == 0 {
                continue;
            }
            canvas.set_width(width);
            canvas.set_height(height);
            context
                .draw_image_with_html_video_element(video, 0.0, 0.0)
                .map_err(failed)?;
            let pixels = context
                .get_image_data(0.0, 0.0, f64::from(width), f64::from(height))
                .map_err(failed)?
                .data();
            let w = width as usize;
            let mut image =
                rqrr::PreparedImage::prepare_from_greyscale(w, height as usize, |x, y| {
                    let i = (y * w + x) * 4;
                    let luma = 299 * u32::from(pixels[i])
                        + 587 * u32::from(pixels[i + 1])
                        + 114 * u32::from(pixels[i + 2]);
                    (luma / 1000) as u8
                });
            for grid in image.detect_grids() {
                if let Ok((_, content)) = grid.decode() {
                    return Ok(Some(content));
                }
            }
        }
        Ok(None)
    }

    /// About eight frames a second: enough to feel instant, light on a phone's battery.
    async fn next_frame() {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 120);
        });
        let _ = JsFuture::from(promise).await;
    }
}
