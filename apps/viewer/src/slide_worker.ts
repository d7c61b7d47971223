/**
 * The viewer's slide reader: a Web Worker that opens slides (the picked File, or the demo's
 * URL) and decodes their tiles, so that the page's thread is free for the encoder and drawing.
 */
import { serveSlides, type SlidePort } from 'sasha-wsi/wsi';

serveSlides(self as unknown as SlidePort);
