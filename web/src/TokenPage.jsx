// Asks for the API token when the page was opened without one.
import React, { useState } from 'react';
import { Button, Form, FormGroup, Page, PageSection, TextInput, Title } from '@patternfly/react-core';

export function TokenPage({ onToken }) {
  const [token, setValue] = useState('');
  return (
    <Page>
      <PageSection>
        <Title headingLevel="h1">clonekit</Title>
        <Form onSubmit={(e) => { e.preventDefault(); onToken(token); }} style={{ maxWidth: 480 }}>
          <FormGroup label="API token" isRequired fieldId="token">
            <TextInput id="token" type="password" value={token} onChange={(_, v) => setValue(v)} autoFocus />
          </FormGroup>
          <Button type="submit" isDisabled={!token}>Connect</Button>
        </Form>
      </PageSection>
    </Page>
  );
}
