import React from 'react';
import { createRoot } from 'react-dom/client';
import '@patternfly/react-core/dist/styles/base.css';
import './console.css';
import App from './App.jsx';

createRoot(document.getElementById('root')).render(<App />);
