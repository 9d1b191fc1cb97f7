import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import QRCode from "qrcode";

/** The member pass the fake camera shows: a QR code of this external id. */
export const CAMERA_PASS = "MBR-CAMERA2345";
export const CAMERA_VIDEO = "fake-camera/pass.y4m";

/** Writes a one-frame Y4M video of CAMERA_PASS's QR code, for Chromium's fake camera. */
export default function globalSetup() {
  const qr = QRCode.create(CAMERA_PASS, { errorCorrectionLevel: "M" }).modules;
  const width = 320;
  const height = 240;
  const scale = 7;
  const side = (qr.size + 8) * scale;
  const left = Math.floor((width - side) / 2);
  const top = Math.floor((height - side) / 2);
  const luma = Buffer.alloc(width * height, 255);
  for (let row = 0; row < qr.size; row++) {
    for (let col = 0; col < qr.size; col++) {
      if (!qr.get(row, col)) continue;
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) {
          const y = top + (row + 4) * scale + dy;
          const x = left + (col + 4) * scale + dx;
          luma[y * width + x] = 0;
        }
      }
    }
  }
  const chroma = Buffer.alloc((width / 2) * (height / 2) * 2, 128);
  mkdirSync(dirname(CAMERA_VIDEO), { recursive: true });
  writeFileSync(
    CAMERA_VIDEO,
    Buffer.concat([
      Buffer.from(`YUV4MPEG2 W${width} H${height} F30:1 Ip A1:1 C420jpeg\nFRAME\n`),
      luma,
      chroma,
    ]),
  );
}
