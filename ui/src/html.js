// The view layer: preact's h bound to htm's tagged templates (no build step).
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
